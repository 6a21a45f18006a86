import fp from 'fastify-plugin'
import { createHash } from 'node:crypto'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'

/**
 * The OpenAPI 3 document, generated from the routes' TypeBox schemas, at /docs/json, and
 * Swagger UI at /docs. Routes under /api and /admin are marked as needing the bearer token.
 * DOCS_ENABLED=false serves neither (404); the document is still built for fastify.swagger().
 */
export default fp(async (fastify) => {
  await fastify.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'tenant-enclave',
        description: 'Runs untrusted JavaScript for many tenants in V8 isolates; tools reach data only through PostgreSQL row-level security scoped to the caller\'s tenant.',
        version: '0.1.0'
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }
        }
      },
      tags: [
        { name: 'execution', description: 'Run scripts and read usage, tools and audit' },
        { name: 'admin', description: 'For the platform gateway: tenants and their tools (admin permission)' },
        { name: 'health', description: 'Liveness, readiness and metrics' },
        { name: 'mcp', description: 'The Model Context Protocol endpoint (Streamable HTTP) and its protected resource metadata' }
      ]
    },
    transform: ({ schema, url }) => {
      const needsToken = url.startsWith('/api/') || url.startsWith('/admin/') || url === '/mcp'
      return { schema: needsToken ? { ...schema, security: [{ bearerAuth: [] }] } as typeof schema : schema, url }
    }
  })
  if (!fastify.config.DOCS_ENABLED) return
  await fastify.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // The UI's own CSP (scripts and styles from this origin) replaces the API's `default-src
    // 'none'` on its pages; without upgrade-insecure-requests, so it also works over plain HTTP
    // in development.
    staticCSP: true,
    transformStaticCSP: swaggerUiCsp
  })
}, { name: 'swagger', dependencies: ['config'] })

/**
 * Swagger UI's top bar draws its logo as an inline SVG holding one <style> element (two fill
 * colours, in swagger-ui-standalone-preset.js), which `style-src 'self'` blocks and Chromium
 * reports as a violation on every visit. That one stylesheet is admitted by its hash, nothing
 * else inline; `https:` goes, as the UI loads no style from another origin. Should an upgrade
 * change the logo, the browser test (test/console/console.test.ts) sees the violation again.
 */
export const SWAGGER_LOGO_STYLE = '.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}'
const SWAGGER_LOGO_STYLE_HASH = `'sha256-${createHash('sha256').update(SWAGGER_LOGO_STYLE).digest('base64')}'`

export function swaggerUiCsp (header: string): string {
  return header
    .replace(/\s*upgrade-insecure-requests;?/, '')
    .replace(/style-src 'self' https:\s*;/, `style-src 'self' ${SWAGGER_LOGO_STYLE_HASH};`)
}
