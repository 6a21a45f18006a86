import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ApprovalModeSchema } from '../../services/tools/tool-settings.ts'
import { empty, errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { ServiceError } from '../../services/errors/index.ts'
import { deleteMcpServer, listMcpServers } from '../../services/tools/mcp-servers.ts'

const ServerName = Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$' })

const ServerBody = Type.Object({
  name: ServerName,
  url: Type.String({ minLength: 1, maxLength: 2048, description: 'The server\'s Streamable HTTP endpoint (e.g. https://notes.example.com/mcp); its origin must be in TOOL_UPSTREAMS' }),
  prefix: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$', description: 'Its tools become <prefix>:<tool>' }),
  headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' }), Type.String({ maxLength: 4096 }), { description: 'Static headers sent with every request (an API key, say); Authorization is always the tenant assertion' })),
  defaultEnabled: Type.Optional(Type.Boolean({ description: 'Whether tenants with no setting may use its tools; default false' })),
  approval: Type.Optional(ApprovalModeSchema),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, description: 'Per call; default 10000' })),
  maxResponseKB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'Default 1024' }))
}, { additionalProperties: false })

const SyncResult = Type.Object({
  name: Type.String(),
  tools: Type.Array(Type.String(), { description: 'The platform tools it now has' }),
  removed: Type.Array(Type.String(), { description: 'Tools it no longer lists, deleted' }),
  skipped: Type.Array(Type.Object({ tool: Type.String(), reason: Type.String() }))
}, { $id: 'McpServerSync' })

const ServerSummary = Type.Object({
  name: Type.String(),
  url: Type.String(),
  prefix: Type.String(),
  tools: Type.Array(Type.String()),
  headerNames: Type.Array(Type.String())
}, { $id: 'McpServer' })

/** What reading a server's tools/list answers, registering or refreshing it. */
const SYNC_RESPONSES = {
  200: json('The tools stored, removed and skipped', SyncResult, rl),
  ...errors([401, 403, 429]),
  ...errors([502], { 502: 'The server could not be reached or did not answer as MCP (MCP_SERVER_UNREACHABLE)' }),
  ...errors([503])
}

/** /admin/mcp-servers: remote MCP servers whose tools are platform tools (docs/api.md "MCP"). */
const adminMcpServerRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/mcp-servers', {
    schema: operation('admin', 'registerMcpServer', 'Register or update a remote MCP server', 'Reads the server\'s tools/list and stores each tool as the platform tool `<prefix>:<tool>`; registering the same name again refreshes it and drops the tools it no longer lists.', {
      body: ServerBody,
      response: {
        ...SYNC_RESPONSES,
        ...errors([400], { 400: 'The body does not match its schema, or the URL is refused (MCP_SERVER_REFUSED)' }),
        ...errors([409], { 409: 'The prefix is taken by another server (MCP_SERVER_CONFLICT)' })
      }
    })
  }, async (request) => {
    // An unreachable server is a 502 MCP_SERVER_UNREACHABLE whose message says why: the cause is the admin's to fix.
    const result = await fastify.mcpUpstreams.sync(request.body)
    request.log.info({ server: request.body.name, tools: result.tools.length, removed: result.removed.length }, 'mcp server registered')
    const { tools, removed, skipped } = result
    return { name: request.body.name, tools, removed, skipped }
  })

  fastify.get('/mcp-servers', {
    schema: operation('admin', 'listMcpServers', 'List remote MCP servers', 'The registered remote MCP servers and their tools (header names only, never their values).', {
      response: { 200: json('The servers', Type.Object({ servers: Type.Array(ServerSummary) }, { $id: 'McpServerList' }), rl), ...errors([401, 403, 429, 503]) }
    })
  }, async () => ({ servers: await listMcpServers(fastify.db) }))

  fastify.post('/mcp-servers/:name/refresh', {
    schema: operation('admin', 'refreshMcpServer', 'Refresh a remote MCP server\'s tools', 'Reads the server\'s tools/list again now (a timer does it every MCP_UPSTREAM_REFRESH_MS).', {
      params: Type.Object({ name: ServerName }),
      response: { ...SYNC_RESPONSES, ...errors([400, 404], { 404: 'No server by that name (MCP_SERVER_NOT_FOUND)' }) }
    })
  }, async (request) => {
    const result = await fastify.mcpUpstreams.refresh(request.params.name)
    if (result === undefined) throw new ServiceError('MCP_SERVER_NOT_FOUND', { name: request.params.name })
    const { tools, removed, skipped } = result
    return { name: request.params.name, tools, removed, skipped }
  })

  fastify.delete('/mcp-servers/:name', {
    schema: operation('admin', 'deleteMcpServer', 'Unregister a remote MCP server', 'Deletes the server and its tools: calls to them fail with TOOL_NOT_FOUND on every instance.', {
      params: Type.Object({ name: ServerName }),
      response: { 204: empty('Unregistered', rl), ...errors([400, 401, 403]), ...errors([404], { 404: 'No server by that name (MCP_SERVER_NOT_FOUND)' }), ...errors([429, 503]) }
    })
  }, async (request, reply) => {
    if (!await deleteMcpServer(fastify.db, request.params.name)) throw new ServiceError('MCP_SERVER_NOT_FOUND', { name: request.params.name })
    await fastify.tools.catalogueChanged()
    return await reply.code(204).send(null)
  })
}

export default adminMcpServerRoutes
