import fp from 'fastify-plugin'
import { NotFoundError } from '../services/errors.ts'
import { DATA_TOOLS } from '../services/tools/data-tools.ts'
import { ToolRegistry } from '../services/tools/tool-registry.ts'
import { openInvalidationChannel, type InvalidationChannel } from '../services/invalidation-channel.ts'

const TOOLS_CHANGED_CHANNEL = 'tenant-enclave:tools-changed'

declare module 'fastify' {
  interface FastifyInstance {
    tools: ToolRegistry
    /** Throws a 404 for a tool name the service does not have. */
    assertKnownTool: (name: string) => void
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  // The channel is opened after the registry it invalidates; the registry announces through it
  // (only later, once both exist).
  const tools = new ToolRegistry(fastify.db, DATA_TOOLS, {
    cacheTtlMs: config.TENANT_CACHE_TTL_MS,
    limits: { maxResultBytes: config.TOOL_RESULT_MAX_BYTES, maxConcurrentPerRun: config.TOOL_MAX_CONCURRENT_PER_RUN },
    announceChange: async (tenantId) => { await invalidations.announce(tenantId) }
  })
  const invalidations: InvalidationChannel = openInvalidationChannel(fastify.store, TOOLS_CHANGED_CHANNEL, (tenantId) => { tools.invalidate(tenantId) }, fastify.log)
  fastify.decorate('tools', tools)
  fastify.decorate('assertKnownTool', (name: string) => {
    if (!tools.has(name)) throw new NotFoundError(`Unknown tool: ${name}`)
  })
  fastify.addHook('onClose', async () => { invalidations.close() })
}, { name: 'tools', dependencies: ['config', 'db', 'store'] })
