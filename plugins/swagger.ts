import fp from 'fastify-plugin'
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
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;?/, '')
  })
}, { name: 'swagger', dependencies: ['config'] })
