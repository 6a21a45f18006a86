import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody, ServiceError } from '../../services/errors/index.ts'
import { deleteMcpServer, listMcpServers } from '../../services/tools/mcp-servers.ts'

const ServerName = Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$' })

const ServerBody = Type.Object({
  name: ServerName,
  url: Type.String({ minLength: 1, maxLength: 2048, description: 'The server\'s Streamable HTTP endpoint (e.g. https://notes.example.com/mcp); its origin must be in TOOL_UPSTREAMS' }),
  prefix: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$', description: 'Its tools become <prefix>:<tool>' }),
  headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' }), Type.String({ maxLength: 4096 }), { description: 'Static headers sent with every request (an API key, say); Authorization is always the tenant assertion' })),
  defaultEnabled: Type.Optional(Type.Boolean({ description: 'Whether tenants with no setting may use its tools; default false' })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, description: 'Per call; default 10000' })),
  maxResponseKB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'Default 1024' }))
}, { additionalProperties: false })

const SyncResult = Type.Object({
  name: Type.String(),
  tools: Type.Array(Type.String(), { description: 'The platform tools it now has' }),
  removed: Type.Array(Type.String(), { description: 'Tools it no longer lists, deleted' }),
  skipped: Type.Array(Type.Object({ tool: Type.String(), reason: Type.String() }))
})

const ServerSummary = Type.Object({
  name: Type.String(),
  url: Type.String(),
  prefix: Type.String(),
  tools: Type.Array(Type.String()),
  headerNames: Type.Array(Type.String())
})

/** /admin/mcp-servers: remote MCP servers whose tools are platform tools (docs/api.md "MCP"). */
const adminMcpServerRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/mcp-servers', {
    schema: {
      tags: ['admin'],
      summary: 'Register (or update) a remote MCP server: its tools/list becomes platform tools <prefix>:<tool>',
      body: ServerBody,
      response: { 200: SyncResult, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody, 502: ErrorBody }
    }
  }, async (request) => {
    // An unreachable server is a 502 MCP_SERVER_UNREACHABLE whose message says why: the cause is the admin's to fix.
    const result = await fastify.mcpUpstreams.sync(request.body)
    request.log.info({ server: request.body.name, tools: result.tools.length, removed: result.removed.length }, 'mcp server registered')
    const { tools, removed, skipped } = result
    return { name: request.body.name, tools, removed, skipped }
  })

  fastify.get('/mcp-servers', {
    schema: {
      tags: ['admin'],
      summary: 'The registered remote MCP servers and their tools',
      response: { 200: Type.Object({ servers: Type.Array(ServerSummary) }), 401: ErrorBody, 403: ErrorBody }
    }
  }, async () => ({ servers: await listMcpServers(fastify.db) }))

  fastify.post('/mcp-servers/:name/refresh', {
    schema: {
      tags: ['admin'],
      summary: 'Read a server\'s tools/list again now',
      params: Type.Object({ name: ServerName }),
      response: { 200: SyncResult, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 502: ErrorBody }
    }
  }, async (request) => {
    const result = await fastify.mcpUpstreams.refresh(request.params.name)
    if (result === undefined) throw new ServiceError('MCP_SERVER_NOT_FOUND', { name: request.params.name })
    const { tools, removed, skipped } = result
    return { name: request.params.name, tools, removed, skipped }
  })

  fastify.delete('/mcp-servers/:name', {
    schema: {
      tags: ['admin'],
      summary: 'Unregister a server: its tools are deleted (calls fail with TOOL_NOT_FOUND)',
      params: Type.Object({ name: ServerName }),
      response: { 204: Type.Null(), 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody }
    }
  }, async (request, reply) => {
    if (!await deleteMcpServer(fastify.db, request.params.name)) throw new ServiceError('MCP_SERVER_NOT_FOUND', { name: request.params.name })
    await fastify.tools.catalogueChanged()
    return await reply.code(204).send(null)
  })
}

export default adminMcpServerRoutes
