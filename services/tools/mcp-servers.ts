import type { Tool } from '@modelcontextprotocol/sdk/types.js'
import type { AppDatabase } from '../db/with-tenant.ts'
import { ServiceError } from '../errors/index.ts'
import { classifyAddress } from './upstream-address-guard.ts'
import type { McpToolClient, McpToolSpec } from './mcp-tool-client.ts'
import {
  DEFAULT_MAX_RESPONSE_KB, DEFAULT_TIMEOUT_MS, checkPlatformTool, isDefinitionRejection, deletePlatformTool,
  listPlatformTools, putPlatformTool, type PlatformTool
} from './platform-tools.ts'
import type { ToolSigner } from './tool-signer.ts'
import type { ApprovalMode } from './tool-definition.ts'

// A remote MCP server registered by an admin: its tools/list becomes platform tools
// `<prefix>:<tool>` (stored like any platform tool, their http spec naming the server), so they
// are in /api/tools, the .d.ts, search and the pre-flight check, and their calls go through the
// gateway. The registration lives in those tools' rows: no table of its own.

export interface McpServerInput {
  name: string
  url: string
  prefix: string
  headers?: Record<string, string>
  defaultEnabled?: boolean
  /** The approval default of each of its tools. */
  approval?: ApprovalMode
  timeoutMs?: number
  maxResponseKB?: number
}

export interface McpServerSummary {
  name: string
  url: string
  prefix: string
  tools: string[]
  /** Header names only: values may be secrets. */
  headerNames: string[]
}

export interface McpServerDeps {
  db: AppDatabase
  client: McpToolClient
  signer: ToolSigner
  builtinNames: Set<string>
  upstreams: Set<string>
  maxResultBytes: number
}

type McpPlatformTool = PlatformTool & { http: PlatformTool['http'] & { mcp: McpToolSpec } }

/** JSON with object keys sorted: stored JSONB comes back with its keys reordered. */
function canonical (value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
    : v)
}

/** A tool's schema as stored: its `$schema` dropped (servers often name draft-07; Ajv 2020 reads the rest). */
function withoutDialect (schema: unknown): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = (schema ?? {}) as Record<string, unknown>
  return rest
}

const isMcpTool = (tool: PlatformTool): tool is McpPlatformTool => tool.http.mcp !== undefined

/** The registered servers, as their tools describe them. */
export async function listMcpServers (db: AppDatabase): Promise<McpServerSummary[]> {
  const servers = new Map<string, McpServerSummary>()
  for (const tool of (await listPlatformTools(db)).filter(isMcpTool)) {
    const { server, prefix, headers } = tool.http.mcp
    const entry = servers.get(server) ?? { name: server, url: tool.http.url, prefix, tools: [], headerNames: Object.keys(headers ?? {}) }
    entry.tools.push(tool.name)
    servers.set(server, entry)
  }
  return [...servers.values()]
}

/** The server's registration as stored on one of its tools (for a refresh). */
export async function storedMcpServer (db: AppDatabase, name: string): Promise<McpServerInput | undefined> {
  const tool = (await listPlatformTools(db)).filter(isMcpTool).find((t) => t.http.mcp.server === name)
  if (tool === undefined) return undefined
  const { prefix, headers } = tool.http.mcp
  return { name, url: tool.http.url, prefix, ...(headers !== undefined ? { headers } : {}), defaultEnabled: tool.defaultEnabled, approval: tool.approval, timeoutMs: tool.http.timeoutMs, maxResponseKB: tool.http.maxResponseKB }
}

/** The URL checks an HTTP tool's URL gets: http(s), no credentials, a TOOL_UPSTREAMS origin, no metadata address. */
function checkServerUrl (url: string, upstreams: Set<string>): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ServiceError('MCP_SERVER_REFUSED', { detail: `${url} is not an absolute URL` })
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ServiceError('MCP_SERVER_REFUSED', { detail: 'it must be http or https' })
  if (parsed.username !== '' || parsed.password !== '' || parsed.hash !== '') throw new ServiceError('MCP_SERVER_REFUSED', { detail: 'it must carry no credentials and no fragment' })
  if (!upstreams.has(parsed.origin)) throw new ServiceError('MCP_SERVER_REFUSED', { detail: `origin ${parsed.origin} is not listed in TOOL_UPSTREAMS` })
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
  if (classifyAddress(host) === 'metadata') throw new ServiceError('MCP_SERVER_REFUSED', { detail: `${host} is a link-local or cloud metadata address` })
  return parsed
}

/**
 * Registers or refreshes a server: reads its tools/list (with an assertion for the platform
 * itself) and stores each tool as `<prefix>:<name>`, dropping the ones it no longer lists.
 * Unchanged tools are not rewritten, so a refresh does not churn the tool caches.
 */
export async function syncMcpServer (deps: McpServerDeps, input: McpServerInput): Promise<{ tools: string[], removed: string[], skipped: Array<{ tool: string, reason: string }>, changed: boolean }> {
  const url = checkServerUrl(input.url, deps.upstreams)
  const existing = await listPlatformTools(deps.db)
  const clash = existing.find((tool) => tool.name.startsWith(`${input.prefix}:`) && (!isMcpTool(tool) || tool.http.mcp.server !== input.name))
  if (clash !== undefined) throw new ServiceError('MCP_SERVER_CONFLICT', { detail: `prefix ${input.prefix} is taken by ${clash.name}` })
  const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxResponseKB = input.maxResponseKB ?? DEFAULT_MAX_RESPONSE_KB
  const assertion = deps.signer.sign({ audience: url.origin, tenantId: 'platform', userId: 'tenant-enclave', executionId: 'mcp-tools-list', tool: `${input.prefix}:*` }).token
  let listed: Tool[]
  try {
    listed = await deps.client.listTools(input.url, { server: input.name, ...(input.headers !== undefined ? { headers: input.headers } : {}) }, assertion, { timeoutMs, maxBytes: deps.maxResultBytes })
  } catch (err) {
    throw new ServiceError('MCP_SERVER_UNREACHABLE', { detail: (err as Error).message.slice(0, 300) })
  }
  const mine = new Map(existing.filter(isMcpTool).filter((tool) => tool.http.mcp.server === input.name).map((tool) => [tool.name, tool]))
  const stored: string[] = []
  let changed = false
  const skipped: Array<{ tool: string, reason: string }> = []
  for (const tool of listed) {
    const name = `${input.prefix}:${tool.name}`
    let checked
    try {
      checked = checkPlatformTool(name, {
        description: tool.description ?? tool.title ?? tool.name,
        argsSchema: withoutDialect(tool.inputSchema),
        ...(tool.outputSchema !== undefined ? { resultSchema: withoutDialect(tool.outputSchema) } : {}),
        http: { method: 'POST', url: input.url, timeoutMs, maxResponseKB },
        defaultEnabled: input.defaultEnabled ?? false,
        approval: input.approval ?? 'never'
      }, { builtinNames: deps.builtinNames, upstreams: deps.upstreams })
    } catch (err) {
      if (!isDefinitionRejection(err)) throw err
      skipped.push({ tool: tool.name, reason: err.message })
      continue
    }
    const mcp: McpToolSpec = { server: input.name, tool: tool.name, prefix: input.prefix, ...(input.headers !== undefined ? { headers: input.headers } : {}) }
    const next = { ...checked, http: { ...checked.http, mcp } }
    const before = mine.get(name)
    mine.delete(name)
    stored.push(name)
    if (before !== undefined && canonical([before.description, before.argsSchema, before.resultSchema, before.http, before.defaultEnabled, before.approval]) === canonical([next.description, next.argsSchema, next.resultSchema, next.http, next.defaultEnabled, next.approval])) continue
    await putPlatformTool(deps.db, next)
    changed = true
  }
  for (const gone of mine.keys()) await deletePlatformTool(deps.db, gone)
  return { tools: stored, removed: [...mine.keys()], skipped, changed: changed || mine.size > 0 }
}

/** Deletes a server's tools; false when it had none. */
export async function deleteMcpServer (db: AppDatabase, name: string): Promise<boolean> {
  const tools = (await listPlatformTools(db)).filter(isMcpTool).filter((tool) => tool.http.mcp.server === name)
  for (const tool of tools) await deletePlatformTool(db, tool.name)
  return tools.length > 0
}
