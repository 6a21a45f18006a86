import fp from 'fastify-plugin'
import { createHash } from 'node:crypto'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import { ExecutionEventSchema, StreamEventSchema } from '../schemas/execution-event.ts'

/**
 * The OpenAPI 3 document, generated from the routes' TypeBox schemas, at /docs/json, and
 * Swagger UI at /docs. Routes under /api and /admin are marked as needing the bearer token.
 * DOCS_ENABLED=false serves neither (404); the document is still built for fastify.swagger().
 */
export default fp(async (fastify) => {
  // The named shapes that responses hold per media type (`content`): @fastify/swagger names the
  // `$id` schemas it finds in JSON Schema keywords, but looks for none under `content`. They are
  // collected as routes are added, and declared as components (before the document is built).
  const contentShapes: Record<string, unknown> = {}
  fastify.addHook('onRoute', (route) => {
    const body = (route.schema as RouteSchema | undefined)?.body as { $id?: unknown } | undefined
    if (typeof body?.$id === 'string') contentShapes[body.$id] = JSON.parse(JSON.stringify(body))
    for (const answer of Object.values((route.schema as RouteSchema | undefined)?.response ?? {})) {
      for (const { schema } of Object.values(answer.content ?? {})) {
        const shape = schema === StreamEventSchema ? ExecutionEventSchema : schema
        const id = (shape as { $id?: unknown } | undefined)?.$id
        // A copy: building the document rewrites the nested named shapes of its components into
        // references, which must not reach the schemas the routes serialise with.
        if (typeof id === 'string') contentShapes[id] = JSON.parse(JSON.stringify(shape))
      }
    }
  })
  await fastify.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'tenant-enclave',
        description: 'Runs untrusted JavaScript for many tenants in V8 isolates; tools reach data only through PostgreSQL row-level security scoped to the caller\'s tenant.',
        version: '0.1.0'
      },
      // Relative: the document is right wherever the service is reached (a gateway's prefix
      // aside), and an SDK is pointed at its base URL anyway.
      servers: [{ url: '/', description: 'The service that serves this document' }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }
        },
        schemas: contentShapes as never
      },
      tags: [
        { name: 'scripts', description: 'Run a script and wait for its result (or stream its events), or check one without running it' },
        { name: 'executions', description: 'Queued runs: submit, follow their events, read their result, cancel' },
        { name: 'sessions', description: 'End-to-end encrypted runs: open a session, send sealed frames' },
        { name: 'tools', description: 'The tools a script can call, and their TypeScript declarations' },
        { name: 'usage', description: 'The tenant\'s quotas and what it used of them' },
        { name: 'audit', description: 'Who ran what, when, and which tools it called' },
        { name: 'admin', description: 'For the platform gateway: tenants and their tools (admin permission)' },
        { name: 'health', description: 'Liveness, readiness, metrics and the service\'s public keys' },
        { name: 'mcp', description: 'The Model Context Protocol endpoint (Streamable HTTP) and its protected resource metadata' }
      ]
    },
    // Shared shapes carry a TypeBox `$id`; nested in a route schema they become
    // components.schemas entries under that name, referenced wherever they are used.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    },
    transform: ({ schema, url }) => {
      // /api and /admin need the token; every other route is public unless it says otherwise
      // (/metrics with METRICS_TOKEN), and says so: `security: []`.
      const needsToken = url.startsWith('/api/') || url.startsWith('/admin/') || url === '/mcp'
      const security = needsToken ? [{ bearerAuth: [] }] : (schema as { security?: unknown } | undefined)?.security ?? []
      return { schema: { ...documentedContent(schema as RouteSchema), security } as typeof schema, url }
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

type RouteSchema = { body?: unknown, response?: Record<string, { content?: Record<string, { schema?: unknown }> }> } & Record<string, unknown>

/**
 * A response's named shapes (per media type) become references to their components; one that
 * streams StreamEventSchema is documented as the union of typed events it carries.
 */
function documentedContent (schema: RouteSchema | undefined): RouteSchema {
  const bodyId = (schema?.body as { $id?: unknown } | undefined)?.$id
  if (typeof bodyId === 'string') schema = { ...schema, body: { $ref: `#/components/schemas/${bodyId}` } }
  if (schema?.response === undefined) return schema ?? {}
  const response = Object.fromEntries(Object.entries(schema.response).map(([status, answer]) => {
    if (answer.content === undefined) return [status, answer]
    const content = Object.fromEntries(Object.entries(answer.content).map(([media, entry]) => {
      const shape = entry.schema === StreamEventSchema ? ExecutionEventSchema : entry.schema
      const id = (shape as { $id?: unknown } | undefined)?.$id
      return [media, typeof id === 'string' ? { ...entry, schema: { $ref: `#/components/schemas/${id}` } } : entry]
    }))
    return [status, { ...answer, content }]
  }))
  return { ...schema, response }
}

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
