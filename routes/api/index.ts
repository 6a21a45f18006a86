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
  for (const routes of [executeRoutes, usageRoutes, toolRoutes, toolDeclarationRoutes, sandboxModuleRoutes, auditRoutes, executionsRoutes, sessionRoutes]) await fastify.register(routes)
}

export default apiRoutes
