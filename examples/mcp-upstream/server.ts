// An example remote MCP server for tenant-enclave: per-tenant notes. Built with the MCP SDK
// (Streamable HTTP, stateless), it trusts nothing but the signed tenant assertion each request
// carries as its bearer token, verified against the service's /.well-known/jwks.json for this
// server's own origin as audience.
//   ENCLAVE_URL=http://127.0.0.1:3000 PORT=4100 npm run example:mcp-upstream
// Register it (TOOL_UPSTREAMS must list http://127.0.0.1:4100):
//   POST /admin/mcp-servers {"name":"notes","url":"http://127.0.0.1:4100/mcp","prefix":"notes"}
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js'

export interface Caller { tenantId: string, userId: string, tool: string, executionId: string }
interface Note { id: string, text: string, createdBy: string }

export interface McpUpstreamOptions {
  /** Where tenant-enclave runs: its JWKS verifies the assertions (read at the first request). */
  enclaveUrl: string | (() => string)
  /** This server's origin as listed in TOOL_UPSTREAMS (the assertion's audience); default from the port. */
  origin?: string
  issuer?: string
  port?: number
}

export interface McpUpstream {
  url: string
  origin: string
  /** Every verified caller, in order: tests read who called. */
  callers: Caller[]
  close: () => Promise<void>
}

const TOOLS = [
  {
    name: 'add_note',
    description: 'Store a note for the calling tenant; returns it with its id',
    inputSchema: { type: 'object', properties: { text: { type: 'string', minLength: 1, maxLength: 10_000 } }, required: ['text'], additionalProperties: false },
    outputSchema: { type: 'object', properties: { id: { type: 'string' }, text: { type: 'string' }, createdBy: { type: 'string' } }, required: ['id', 'text', 'createdBy'] }
  },
  {
    name: 'list_notes',
    description: 'The calling tenant\'s notes, oldest first',
    inputSchema: { type: 'object', properties: {}, additionalProperties: false },
    outputSchema: { type: 'object', properties: { notes: { type: 'array', items: { type: 'object' } } }, required: ['notes'] }
  },
  {
    name: 'whoami',
    description: 'Who the verified assertion says is calling: tenant, user, tool and execution',
    inputSchema: { type: 'object', properties: {}, additionalProperties: false }
  },
  {
    name: 'wait',
    description: 'Answers after the given milliseconds (at most 30 s), to see timeouts',
    inputSchema: { type: 'object', properties: { ms: { type: 'integer', minimum: 0, maximum: 30_000 } }, required: ['ms'] }
  },
  {
    name: 'fail',
    description: 'Always answers a tool error with the given message (to see how errors reach a script)',
    inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] }
  }
]

async function readJson (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > 1024 * 1024) throw new Error('body too large')
    chunks.push(chunk as Buffer)
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

export async function startMcpUpstream (options: McpUpstreamOptions): Promise<McpUpstream> {
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined
  const keys = (): ReturnType<typeof createRemoteJWKSet> => {
    jwks ??= createRemoteJWKSet(new URL('/.well-known/jwks.json', typeof options.enclaveUrl === 'string' ? options.enclaveUrl : options.enclaveUrl()))
    return jwks
  }
  // Per tenant, chosen by the verified assertion only: a tenant never reaches another's notes.
  const notes = new Map<string, Note[]>()
  const callers: Caller[] = []
  let origin = options.origin ?? ''

  // A server per request (stateless) shares one validator: the SDK would build an Ajv per server.
  const validator = new AjvJsonSchemaValidator()
  const serverFor = (caller: Caller): Server => {
    const server = new Server({ name: 'notes-example', version: '1.0.0' }, { capabilities: { tools: {} }, jsonSchemaValidator: validator })
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }))
    server.setRequestHandler(CallToolRequestSchema, async (request): Promise<CallToolResult> => {
      const args = (request.params.arguments ?? {}) as Record<string, unknown>
      const own = notes.get(caller.tenantId) ?? []
      notes.set(caller.tenantId, own)
      switch (request.params.name) {
        case 'add_note': {
          const note = { id: randomUUID(), text: String(args.text), createdBy: caller.userId }
          own.push(note)
          return { content: [{ type: 'text', text: JSON.stringify(note) }], structuredContent: note }
        }
        case 'list_notes':
          return { content: [{ type: 'text', text: JSON.stringify({ notes: own }) }], structuredContent: { notes: own } }
        case 'whoami':
          return { content: [{ type: 'text', text: JSON.stringify(caller) }] }
        case 'wait':
          await new Promise((resolve) => setTimeout(resolve, Math.min(Number(args.ms), 30_000)))
          return { content: [{ type: 'text', text: JSON.stringify({ waited: args.ms }) }] }
        case 'fail':
          return { isError: true, content: [{ type: 'text', text: String(args.message) }] }
        default:
          return { isError: true, content: [{ type: 'text', text: `Unknown tool ${request.params.name}` }] }
      }
    })
    return server
  }

  const http: HttpServer = createServer((req, res) => {
    void (async () => {
      if (req.url !== '/mcp') { res.writeHead(404).end(); return }
      if (req.method !== 'POST') { res.writeHead(405, { allow: 'POST' }).end(); return }
      const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
      let caller: Caller
      try {
        if (match === null) throw new Error('missing assertion')
        const { payload } = await jwtVerify(match[1] as string, keys(), { issuer: options.issuer ?? 'tenant-enclave', audience: origin, algorithms: ['ES256'], maxTokenAge: '60s' })
        caller = { tenantId: String(payload.tenantId), userId: String(payload.sub), tool: String(payload.tool), executionId: String(payload.executionId) }
      } catch {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid assertion' }))
        return
      }
      callers.push(caller)
      const body = await readJson(req)
      const server = serverFor(caller)
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
      res.on('close', () => { void transport.close(); void server.close() })
      await server.connect(transport)
      await transport.handleRequest(req, res, body)
    })().catch(() => { if (!res.headersSent) res.writeHead(400).end(); else res.end() })
  })
  await new Promise<void>((resolve) => http.listen(options.port ?? 0, '127.0.0.1', resolve))
  const { port } = http.address() as AddressInfo
  if (origin === '') origin = `http://127.0.0.1:${port}`
  return {
    url: `${origin}/mcp`,
    origin,
    callers,
    close: async () => { http.closeAllConnections(); await new Promise<void>((resolve) => http.close(() => { resolve() })) }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const upstream = await startMcpUpstream({ enclaveUrl: process.env.ENCLAVE_URL ?? 'http://127.0.0.1:3000', port: Number(process.env.PORT ?? 4100) })
  console.log(`notes MCP server at ${upstream.url}`)
}
