import fp from 'fastify-plugin'
import { NotFoundError } from '../services/errors.ts'
import { DATA_TOOLS } from '../services/tools/data-tools.ts'
import { ToolRegistry } from '../services/tools/tool-registry.ts'
import { openInvalidationChannel } from '../services/invalidation-channel.ts'

const TOOLS_CHANGED_CHANNEL = 'tenant-enclave:tools-changed'

declare module 'fastify' {
  interface FastifyInstance {
    tools: ToolRegistry
    /** Throws a 404 for a tool name the service does not have. */
    assertKnownTool: (name: string) => void
    /** Drops the tenant's cached tool settings here and, through pub/sub, on every other instance. */
    announceToolsChange: (tenantId: string) => Promise<void>
  }
}

export default fp(async (fastify) => {
  const tools = new ToolRegistry(fastify.db, DATA_TOOLS, fastify.config.TENANT_CACHE_TTL_MS)
  fastify.decorate('tools', tools)
  fastify.decorate('assertKnownTool', (name: string) => {
    if (!tools.has(name)) throw new NotFoundError(`Unknown tool: ${name}`)
  })
  const invalidations = openInvalidationChannel(fastify.store, TOOLS_CHANGED_CHANNEL, (tenantId) => { tools.invalidate(tenantId) }, fastify.log)
  fastify.decorate('announceToolsChange', invalidations.announce)
  fastify.addHook('onClose', async () => { invalidations.close() })
}, { name: 'tools', dependencies: ['config', 'db', 'redis'] })
