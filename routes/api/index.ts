import type { FastifyPluginAsync } from 'fastify'
import executeRoutes from './execute.ts'
import usageRoutes from './usage.ts'
import toolRoutes from './tools.ts'
import toolDeclarationRoutes from './tools-dts.ts'
import sandboxModuleRoutes from './modules.ts'
import auditRoutes from './audit.ts'
import executionsRoutes from './executions.ts'
import sessionRoutes from './sessions.ts'

/** /api/*: every route needs a tenant token. */
const apiRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.addHook('onRequest', fastify.authenticate)
  await fastify.register(executeRoutes)
  await fastify.register(usageRoutes)
  await fastify.register(toolRoutes)
  await fastify.register(toolDeclarationRoutes)
  await fastify.register(sandboxModuleRoutes)
  await fastify.register(auditRoutes)
  await fastify.register(executionsRoutes)
  await fastify.register(sessionRoutes)
}

export default apiRoutes
