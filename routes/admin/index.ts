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
  await fastify.register(adminTenantRoutes)
  await fastify.register(adminToolRoutes)
  await fastify.register(adminPlatformToolRoutes)
  await fastify.register(adminMcpServerRoutes)
  await fastify.register(adminUsageRoutes)
}

export default adminRoutes
