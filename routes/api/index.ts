import type { FastifyPluginAsync } from 'fastify'
import executeRoutes from './execute.js'
import usageRoutes from './usage.js'
import toolRoutes from './tools.js'
import auditRoutes from './audit.js'

/** /api/*: every route needs a tenant token. */
const apiRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.addHook('onRequest', fastify.authenticate)
  await fastify.register(executeRoutes)
  await fastify.register(usageRoutes)
  await fastify.register(toolRoutes)
  await fastify.register(auditRoutes)
}

export default apiRoutes
