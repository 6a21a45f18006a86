import fp from 'fastify-plugin'
import { normaliseOrigins } from '../services/tools/platform-tools.ts'
import { listMcpServers, storedMcpServer, syncMcpServer, type McpServerDeps, type McpServerInput } from '../services/tools/mcp-servers.ts'
import { toolUpstreams } from './config.ts'

type SyncResult = Awaited<ReturnType<typeof syncMcpServer>>

declare module 'fastify' {
  interface FastifyInstance {
    /** Remote MCP servers as platform tools: register, and refresh from their tools/list. */
    mcpUpstreams: {
      sync: (input: McpServerInput) => Promise<SyncResult>
      refresh: (name: string) => Promise<SyncResult | undefined>
    }
  }
}

/**
 * Keeps remote MCP servers' tools current: every MCP_UPSTREAM_REFRESH_MS, and when a server says
 * notifications/tools/list_changed. A server that cannot be reached keeps its last tools.
 */
export default fp(async (fastify) => {
  const runner = fastify.tools.httpRunner
  if (runner === undefined) throw new Error('mcp-upstreams needs the tools plugin\'s HTTP runner')
  const deps: McpServerDeps = {
    db: fastify.db,
    client: runner.mcp,
    signer: fastify.serviceKeys.toolSigner,
    builtinNames: fastify.tools.builtinNames(),
    upstreams: normaliseOrigins(toolUpstreams(fastify.config)),
    maxResultBytes: fastify.config.TOOL_RESULT_MAX_BYTES
  }
  const sync = async (input: McpServerInput): Promise<SyncResult> => {
    const result = await syncMcpServer(deps, input)
    // Only a real change is announced: every instance refreshes on its timer, and each
    // announcement empties every instance's tool catalogue cache.
    if (result.changed) await fastify.tools.catalogueChanged()
    return result
  }
  const refresh = async (name: string): Promise<SyncResult | undefined> => {
    const input = await storedMcpServer(fastify.db, name)
    return input === undefined ? undefined : await sync(input)
  }
  const refreshQuietly = (name: string): void => {
    refresh(name).catch((err: unknown) => { fastify.log.warn({ err, server: name }, 'mcp server refresh failed') })
  }
  runner.mcp.onToolsChanged = refreshQuietly
  const timer = setInterval(() => {
    listMcpServers(fastify.db).then((servers) => { for (const server of servers) refreshQuietly(server.name) }, (err: unknown) => { fastify.log.warn({ err }, 'mcp servers could not be listed') })
  }, fastify.config.MCP_UPSTREAM_REFRESH_MS)
  timer.unref()
  fastify.decorate('mcpUpstreams', { sync, refresh })
  fastify.addHook('onClose', async () => { clearInterval(timer) })
}, { name: 'mcp-upstreams', dependencies: ['config', 'db', 'tools', 'service-keys'] })
