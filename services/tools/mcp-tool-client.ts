import { AsyncLocalStorage } from 'node:async_hooks'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ToolListChangedNotificationSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js'
import type { Dispatcher } from 'undici'
import { upstreamFetch, type UpstreamRequestScope } from './mcp-upstream-fetch.ts'

// Remote MCP servers' tools, called as platform tools: through the SDK's Client over Streamable
// HTTP, on the HTTP tools' guarded connection pool (link-local addresses refused at connect),
// with no redirect followed, each response cut off at its byte limit, and each request carrying
// the assertion of the call it serves.

/** Where an MCP platform tool's calls go, besides its http.url (the server's /mcp URL). */
export interface McpToolSpec {
  /** The registration's name (POST /admin/mcp-servers). */
  server: string
  /** The tool's name on that server (the platform tool is `<prefix>:<tool>`). */
  tool: string
  prefix: string
  /** Static headers the admin gave (an API key, say); the assertion is always the bearer. */
  headers?: Record<string, string>
}

export class McpToolResponseTooLarge extends Error {
  override name = 'McpToolResponseTooLarge'
}

/** A tool error the upstream reported (`isError: true`): its text reaches the script. */
export class McpToolError extends Error {
  override name = 'McpToolError'
}

function textOf (result: CallToolResult): string {
  return result.content.filter((item) => item.type === 'text').map((item) => (item as { text: string }).text).join('\n')
}

/**
 * The value a script gets for a tool result: its structuredContent when the tool has one, else
 * its text (parsed when it is JSON, as most tools answer), else the content items themselves.
 */
export function scriptValue (result: CallToolResult): unknown {
  if (result.structuredContent !== undefined) return result.structuredContent
  const texts = result.content.filter((item) => item.type === 'text')
  if (texts.length === result.content.length && texts.length > 0) {
    const text = textOf(result)
    try { return JSON.parse(text) } catch { return text }
  }
  return result.content
}

export interface McpToolClientOptions {
  dispatcher: Dispatcher
  /** Told when a server says its tools changed (notifications/tools/list_changed). */
  onToolsChanged?: (server: string) => void
}

/**
 * One connected SDK client per server URL and static headers, shared by every call to it (an
 * initialize per call would triple the round trips). Each request's bearer comes from the call
 * that makes it (AsyncLocalStorage), so calls of different tenants never share an assertion.
 */
export class McpToolClient {
  private readonly clients = new Map<string, Promise<Client>>()
  private readonly scope = new AsyncLocalStorage<UpstreamRequestScope>()
  private readonly dispatcher: Dispatcher
  /** Told when a server says its tools changed; set by whoever keeps the catalogue current. */
  onToolsChanged: ((server: string) => void) | undefined

  constructor (options: McpToolClientOptions) {
    this.dispatcher = options.dispatcher
    this.onToolsChanged = options.onToolsChanged
  }

  /** tools/list of a server, for registration and refresh; the assertion names no execution. */
  async listTools (url: string, spec: Pick<McpToolSpec, 'server' | 'headers'>, assertion: string, options: { timeoutMs: number, maxBytes: number }): Promise<Tool[]> {
    return await this.withClient(url, spec, { assertion, maxBytes: options.maxBytes, tooLarge: () => new McpToolResponseTooLarge(`tools/list over ${options.maxBytes} bytes`) }, async (client) => {
      const tools: Tool[] = []
      let cursor: string | undefined
      do {
        const page = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: options.timeoutMs })
        tools.push(...page.tools)
        cursor = page.nextCursor
      } while (cursor !== undefined && tools.length < 10_000)
      return tools
    })
  }

  /**
   * tools/call, ended by the SDK's timer at `deadline` (performance.now() ms: a connect or retry
   * before it counts too); an isError result throws McpToolError with the tool's text.
   */
  async call (url: string, spec: McpToolSpec, args: Record<string, unknown>, options: { assertion: string | Promise<string>, deadline: number, maxBytes: number, signal?: AbortSignal, tooLarge: () => Error }): Promise<{ value: unknown, resultBytes: number }> {
    const result = await this.withClient(url, spec, options, async (client) => await client.callTool(
      { name: spec.tool, arguments: args },
      undefined,
      { timeout: Math.max(1, options.deadline - performance.now()), ...(options.signal !== undefined ? { signal: options.signal } : {}) }
    )) as CallToolResult
    if (result.isError === true) throw new McpToolError(textOf(result).slice(0, 2000) || 'the tool reported an error')
    const value = scriptValue(result)
    return { value, resultBytes: Buffer.byteLength(JSON.stringify(value ?? null)) }
  }

  async close (): Promise<void> {
    const clients = [...this.clients.values()]
    this.clients.clear()
    await Promise.all(clients.map(async (client) => { await (await client).close() })).catch(() => {})
  }

  /** Runs `fn` on the server's client in this request scope; a broken session is reopened once. */
  private async withClient<T> (url: string, spec: Pick<McpToolSpec, 'server' | 'headers'>, scope: UpstreamRequestScope, fn: (client: Client) => Promise<T>): Promise<T> {
    return await this.scope.run(scope, async () => {
      const key = JSON.stringify([url, spec.headers ?? {}])
      const client = await this.connected(key, url, spec)
      try {
        return await fn(client)
      } catch (err) {
        // A session the server forgot (404) or a connection that broke: one fresh start.
        const code = (err as { code?: unknown }).code
        if (code !== 404 && !(err instanceof TypeError)) throw err
        this.forget(key, client)
        return await fn(await this.connected(key, url, spec))
      }
    })
  }

  private forget (key: string, client: Client): void {
    void this.clients.get(key)?.then((current) => { if (current === client) this.clients.delete(key) }, () => {})
    client.close().catch(() => {})
  }

  private async connected (key: string, url: string, spec: Pick<McpToolSpec, 'server' | 'headers'>): Promise<Client> {
    let client = this.clients.get(key)
    if (client === undefined) {
      client = this.connect(url, spec)
      this.clients.set(key, client)
      client.catch(() => { this.clients.delete(key) })
    }
    return await client
  }

  private async connect (url: string, spec: Pick<McpToolSpec, 'server' | 'headers'>): Promise<Client> {
    const client = new Client({ name: 'tenant-enclave', version: '0.1.0' })
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => { this.onToolsChanged?.(spec.server) })
    const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: upstreamFetch(this.dispatcher, spec.headers ?? {}, () => this.scope.getStore()) })
    await client.connect(transport)
    return client
  }
}
