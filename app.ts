import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import configPlugin, { type Config } from './plugins/config.js'
import errorHandlerPlugin from './plugins/error-handler.js'
import jsonBodyPlugin from './plugins/json-body.js'
import drainPlugin from './plugins/drain.js'
import dbPlugin from './plugins/db.js'
import redisPlugin from './plugins/redis.js'
import tenantsPlugin from './plugins/tenants.js'
import authPlugin from './plugins/auth.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import toolsPlugin from './plugins/tools.js'
import metricsPlugin from './plugins/metrics.js'
import auditPlugin from './plugins/audit.js'
import enclavePlugin from './plugins/enclave.js'
import swaggerPlugin from './plugins/swagger.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import apiRoutes from './routes/api/index.js'
import adminRoutes from './routes/admin/index.js'

export interface AppOptions {
  config: Config
}

/** Fastify's own options for this app; server.ts and the test helper both build from these. */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.JWT_SECRET', '*.password', 'config.JWT_SECRET'],
        censor: '[redacted]'
      }
    },
    bodyLimit: config.BODY_LIMIT_BYTES,
    return503OnClosing: true
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
  await fastify.register(drainPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(dbPlugin)
  await fastify.register(redisPlugin)
  await fastify.register(tenantsPlugin)
  await fastify.register(authPlugin)
  await fastify.register(rateLimitPlugin)
  await fastify.register(toolsPlugin)
  await fastify.register(auditPlugin)
  await fastify.register(enclavePlugin)
  await fastify.register(swaggerPlugin)

  await fastify.register(healthRoutes)
  await fastify.register(metricsRoutes)
  await fastify.register(apiRoutes, { prefix: '/api' })
  await fastify.register(adminRoutes, { prefix: '/admin' })
}

export default fp(app, { name: 'app' })
