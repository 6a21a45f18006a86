import type { FastifyPluginAsync } from 'fastify'
import adminTenantRoutes from './tenants.ts'
import adminToolRoutes from './tenant-tools.ts'
import adminPlatformToolRoutes from './tools.ts'
import adminMcpServerRoutes from './mcp-servers.ts'
import adminUsageRoutes from './usage.ts'

/** /admin/*: for the platform gateway; every route needs a token with the `admin` permission. */
const adminRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.addHook('onRequest', fastify.authenticate)
  fastify.addHook('onRequest', fastify.requireAdmin)
  for (const routes of [adminTenantRoutes, adminToolRoutes, adminPlatformToolRoutes, adminMcpServerRoutes, adminUsageRoutes]) await fastify.register(routes)
}

export default adminRoutes
