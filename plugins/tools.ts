import fp from 'fastify-plugin'
import { ServiceError } from '../services/errors/index.ts'
import { DATA_TOOLS } from '../services/tools/data-tools.ts'
import { ToolRegistry } from '../services/tools/tool-registry.ts'
import { HttpToolRunner } from '../services/tools/http-tool-runner.ts'
import { listPlatformTools, toDefinition } from '../services/tools/platform-tools.ts'
import { toolUpstreams } from './config.ts'
import { openInvalidationChannel, type InvalidationChannel } from '../services/invalidation-channel.ts'

const TOOLS_CHANGED_CHANNEL = 'tenant-enclave:tools-changed'
// On the same channel as tenant ids, which cannot start with '#' (the token's tenantId pattern).
const CATALOGUE_CHANGED = '#catalogue'

declare module 'fastify' {
  interface FastifyInstance {
    tools: ToolRegistry
    /** Throws a 404 for a tool name the service does not have (built-in or platform). */
    assertKnownTool: (name: string) => Promise<void>
  }
}

export default fp(async (fastify) => {
  const { config } = fastify
  const httpRunner = new HttpToolRunner({
    signer: fastify.serviceKeys.toolSigner,
    maxResultBytes: config.TOOL_RESULT_MAX_BYTES,
    upstreams: toolUpstreams(config),
    privateHosts: config.TOOL_UPSTREAM_PRIVATE_HOSTS.split(',').map((h) => h.trim()).filter((h) => h !== ''),
    caps: {
      connectionsPerOrigin: config.TOOL_UPSTREAM_CONNECTIONS,
      tenantMaxInFlight: config.TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT,
      tierSharePercent: {
        free: config.TOOL_UPSTREAM_FREE_SHARE_PERCENT,
        starter: config.TOOL_UPSTREAM_STARTER_SHARE_PERCENT,
        enterprise: config.TOOL_UPSTREAM_ENTERPRISE_SHARE_PERCENT
      }
    },
    // The tenant directory's cached record: a tier change holds within TENANT_CACHE_TTL_MS.
    tierOf: async (tenantId) => (await fastify.tenants.get(tenantId)).tier
  })
  // The channel is opened after the registry it invalidates; the registry announces through it
  // (only later, once both exist).
  const tools = new ToolRegistry(fastify.db, DATA_TOOLS, {
    cacheTtlMs: config.TENANT_CACHE_TTL_MS,
    limits: { maxResultBytes: config.TOOL_RESULT_MAX_BYTES, maxConcurrentPerRun: config.TOOL_MAX_CONCURRENT_PER_RUN },
    announceChange: async (tenantId) => { await invalidations.announce(tenantId) },
    loadPlatformTools: async () => (await listPlatformTools(fastify.db)).map(toDefinition),
    announceCatalogueChange: async () => { await invalidations.announce(CATALOGUE_CHANGED) },
    httpRunner
  })
  const invalidations: InvalidationChannel = openInvalidationChannel(fastify.store, TOOLS_CHANGED_CHANNEL, (id) => {
    if (id === CATALOGUE_CHANGED) tools.invalidateCatalogue()
    else tools.invalidate(id)
  }, fastify.log)
  fastify.decorate('tools', tools)
  fastify.decorate('assertKnownTool', async (name: string) => {
    if (!(await tools.has(name))) throw new ServiceError('NOT_FOUND', { what: `Unknown tool: ${name}` })
  })
  fastify.addHook('onClose', async () => {
    invalidations.close()
    await httpRunner.close()
  })
}, { name: 'tools', dependencies: ['config', 'db', 'store', 'service-keys', 'tenants'] })
