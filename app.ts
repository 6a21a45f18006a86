import fp from 'fastify-plugin'
import type { Server } from 'node:http'
import type { FastifyHttpOptions, FastifyInstance } from 'fastify'
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import configPlugin, { type Config } from './plugins/config.ts'
import errorHandlerPlugin from './plugins/error-handler.ts'
import jsonBodyPlugin from './plugins/json-body.ts'
import securityHeadersPlugin from './plugins/security-headers.ts'
import corsPlugin from './plugins/cors.ts'
import drainPlugin from './plugins/drain.ts'
import dbPlugin from './plugins/db.ts'
import storePlugin from './plugins/store.ts'
import tenantsPlugin from './plugins/tenants.ts'
import authPlugin from './plugins/auth.ts'
import rateLimitPlugin from './plugins/rate-limit.ts'
import serviceKeysPlugin from './plugins/service-keys.ts'
import toolsPlugin from './plugins/tools.ts'
import metricsPlugin from './plugins/metrics.ts'
import auditPlugin from './plugins/audit.ts'
import enclavePlugin from './plugins/enclave.ts'
import codeModePlugin from './plugins/code-mode.ts'
import sandboxModulesPlugin from './plugins/sandbox-modules.ts'
import swaggerPlugin from './plugins/swagger.ts'
import executionsPlugin from './plugins/executions.ts'
import sessionIdentityPlugin from './plugins/session-identity.ts'
import sessionsPlugin from './plugins/sessions.ts'
import consolePlugin from './plugins/console.ts'
import mcpPlugin from './plugins/mcp.ts'
import mcpUpstreamsPlugin from './plugins/mcp-upstreams.ts'
import healthRoutes from './routes/health.ts'
import metricsRoutes from './routes/metrics.ts'
import apiRoutes from './routes/api/index.ts'
import adminRoutes from './routes/admin/index.ts'
import wellKnownRoutes from './routes/well-known.ts'
import wellKnownSessionRoutes from './routes/well-known-session.ts'
import mcpRoutes from './routes/mcp.ts'
import oauthProtectedResourceRoutes from './routes/oauth-protected-resource.ts'

export interface AppOptions {
  config: Config
}

/** Fastify's own options for this app; server.ts and the test helper both build from these. */
export function serverOptions (config: Config): FastifyHttpOptions<Server> {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.JWT_SECRET', '*.password', 'config.JWT_SECRET'],
        censor: '[redacted]'
      }
    },
    bodyLimit: config.BODY_LIMIT_BYTES,
    return503OnClosing: true,
    // Embedded PGlite compiles PostgreSQL's WASM at start: seconds on a busy 2-core machine.
    pluginTimeout: 60_000,
    // Slow clients (slowloris) must not hold sockets: Node answers 408 and closes a connection
    // whose headers, or whole request, take longer than these. The response may take longer.
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      // Node checks both timeouts on this interval (30 s by default), so it bounds how late a
      // slow client is cut off.
      connectionsCheckingInterval: Math.min(1000, config.HTTP_HEADERS_TIMEOUT_MS)
    }
  }
}

/**
 * The whole service as a plugin: plugins first, then routes. It is not encapsulated, so the
 * instance that registers it (server.ts, the test helper) sees its decorators.
 */
async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  // TypeBox validates requests: bodies exactly as sent (no type coercion, unknown fields refused),
  // while querystrings and params are converted from their string form.
  fastify.setValidatorCompiler(TypeBoxValidatorCompiler)
  await fastify.register(configPlugin, { config: opts.config })
  await fastify.register(errorHandlerPlugin)
  await fastify.register(jsonBodyPlugin)
  await fastify.register(securityHeadersPlugin)
  await fastify.register(corsPlugin)
  await fastify.register(drainPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(dbPlugin)
  await fastify.register(storePlugin)
  await fastify.register(tenantsPlugin)
  await fastify.register(authPlugin)
  await fastify.register(rateLimitPlugin)
  await fastify.register(serviceKeysPlugin)
  await fastify.register(toolsPlugin)
  await fastify.register(auditPlugin)
  await fastify.register(enclavePlugin)
  await fastify.register(codeModePlugin)
  await fastify.register(sandboxModulesPlugin)
  await fastify.register(swaggerPlugin)
  await fastify.register(executionsPlugin)
  await fastify.register(sessionIdentityPlugin)
  await fastify.register(sessionsPlugin)
  await fastify.register(consolePlugin)
  await fastify.register(mcpPlugin)
  await fastify.register(mcpUpstreamsPlugin)

  await fastify.register(healthRoutes)
  await fastify.register(metricsRoutes)
  await fastify.register(wellKnownRoutes)
  await fastify.register(apiRoutes, { prefix: '/api' })
  await fastify.register(adminRoutes, { prefix: '/admin' })
  await fastify.register(wellKnownSessionRoutes)
  await fastify.register(mcpRoutes)
  await fastify.register(oauthProtectedResourceRoutes)
}

export default fp(app, { name: 'app' })
