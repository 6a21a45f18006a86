import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv'
import {
  CallToolRequestSchema, CancelledNotificationSchema, ErrorCode, ListToolsRequestSchema, McpError, SetLevelRequestSchema,
  type CallToolResult, type LoggingLevel, type ServerNotification
} from '@modelcontextprotocol/sdk/types.js'
import type { Static } from 'typebox'
import { Compile } from 'typebox/compile'
import type { ExecutionResult } from '../../schemas/execution-result.ts'
import type { CheckReport } from '../code-mode/check-script.ts'
import type { ScriptLanguage } from '../code-mode/strip-types.ts'
import type { DeclaredTool } from '../code-mode/tool-declarations.ts'
import type { LogLevels, RunningCalls } from './caller-state.ts'
import { CODE_MODE_TOOLS, type CheckArgs, type ExecuteArgs } from './code-mode-tools.ts'
import { describeModules, type CallerModules } from './module-listing.ts'

/** A run's live event, as the execution path reports it. */
export type RunEvent =
  | { type: 'started', data: Record<string, never> }
  | { type: 'log', data: { level: string, message: string } }
  | { type: 'tool_call', data: { index: number, tool: string } }
  | { type: 'tool_result', data: { index: number, code: string, durationMs: number } }
  | { type: 'approval_required', data: { callId: string, tool: string, args: unknown, position: number } }

/** A refusal before the run (quota, size): the same body the REST API answers with. */
export interface McpRefusal { status: number, body: { error: string, code: string, [field: string]: unknown } }

/** What one authenticated MCP request may do: the route binds these to the caller. */
export interface CodeModeCaller extends CallerModules {
  /** Tenant and user: the key of the caller's log level and running calls. */
  key: string
  /** The tools this token may call (enabled and permitted). */
  callableTools: () => Promise<DeclaredTool[]>
  declarations: (tools: DeclaredTool[]) => Promise<string>
  check: (request: { code: string, language?: ScriptLanguage }) => Promise<{ report: CheckReport } | { refusal: McpRefusal }>
  execute: (request: { code: string, language?: ScriptLanguage, timeoutMs?: number }, live: { onEvent: (event: RunEvent) => void, signal: AbortSignal }) => Promise<{ result: ExecutionResult } | { refusal: McpRefusal }>
  logLevels: LogLevels
  running: RunningCalls
  /** A client's notifications/cancelled for one of its calls, wherever that call runs. */
  cancel: (requestId: string | number) => void
}

export const SERVER_INFO = { name: 'tenant-enclave', version: '0.1.0' }

// The SDK builds a fresh Ajv (formats and all) for every Server unless given one: a server per
// request would pay that each time. It validates only elicitation answers, which this server
// never asks for, so one shared instance serves them all.
const SHARED_VALIDATOR = new AjvJsonSchemaValidator()

const INSTRUCTIONS = `Code mode: instead of calling tools one by one, write a short JavaScript (or TypeScript) script
that calls them with \`await callTool(name, args)\` and returns what you need. Find tools with
search_tools, read their exact argument and result types with describe_tools, optionally
check_script, then execute_script. The script runs in a sandbox: no fetch, timers, require or process;
it may import the npm modules describe_tools lists (e.g. \`import { z } from 'zod'\`).`

const CONSOLE_LEVELS: Record<string, LoggingLevel> = { log: 'info', info: 'info', warn: 'warning', error: 'error', debug: 'debug' }

/** The first line (or sentence) of a description, short enough for a list a model scans. */
export function oneLine (description: string): string {
  const first = description.trim().split(/\n|(?<=\.)\s/)[0] ?? ''
  return first.length > 200 ? `${first.slice(0, 199)}…` : first
}

const text = (value: string): CallToolResult['content'] => [{ type: 'text', text: value }]

function refusalResult (refusal: McpRefusal): CallToolResult {
  const { code, error, ...rest } = refusal.body
  const message = typeof rest.message === 'string' ? rest.message : error
  return { isError: true, content: text(`${code}: ${message}${rest.limit !== undefined ? ` (limit ${String(rest.limit)})` : ''}\n${JSON.stringify(refusal.body)}`) }
}

/** The short text rendering of a run next to its structuredContent. */
export function renderResult (result: ExecutionResult): string {
  const lines: string[] = []
  if (result.success) {
    const value = result.value === undefined ? 'undefined' : JSON.stringify(result.value)
    lines.push(`Returned: ${value.length > 4000 ? `${value.slice(0, 4000)}… (truncated; the whole value is in structuredContent)` : value}`)
  } else {
    lines.push(`${result.error?.code ?? 'EXECUTION_ERROR'}: ${result.error?.message ?? 'the run failed'}`)
  }
  for (const log of result.logs.slice(0, 20)) lines.push(`[${log.level}] ${log.message.length > 500 ? `${log.message.slice(0, 500)}…` : log.message}`)
  if (result.logs.length > 20) lines.push(`(${result.logs.length - 20} more log lines in structuredContent)`)
  lines.push(`(${Math.round(result.stats.duration)} ms, ${result.stats.toolCallCount} tool calls, execution ${result.executionId})`)
  return lines.join('\n')
}

const SearchArgs = Compile(CODE_MODE_TOOLS.search_tools.input)
const DescribeArgs = Compile(CODE_MODE_TOOLS.describe_tools.input)
const CheckArgsCheck = Compile(CODE_MODE_TOOLS.check_script.input)
const ExecuteArgsCheck = Compile(CODE_MODE_TOOLS.execute_script.input)

function parseArgs<T> (check: { Check: (value: unknown) => boolean, Errors: (value: unknown) => Iterable<{ instancePath: string, message: string }> }, args: unknown, tool: string): T {
  if (check.Check(args)) return args as T
  const first = [...check.Errors(args)][0]
  throw new McpError(ErrorCode.InvalidParams, `Invalid arguments for ${tool}: ${first === undefined ? 'they do not match its inputSchema' : `${first.instancePath === '' ? '' : `${first.instancePath} `}${first.message}`}`)
}

/**
 * The MCP server of one request: the four code-mode tools over the caller's tools and runs.
 * A fresh one per POST (stateless Streamable HTTP), so it holds nothing between requests.
 */
export function createCodeModeServer (caller: CodeModeCaller): Server {
  const server = new Server(SERVER_INFO, { capabilities: { tools: {}, logging: {} }, instructions: INSTRUCTIONS, jsonSchemaValidator: SHARED_VALIDATOR })

  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: Object.entries(CODE_MODE_TOOLS).map(([name, tool]) => ({
      name,
      title: tool.title,
      description: tool.description,
      inputSchema: tool.input as never,
      ...(tool.output !== undefined ? { outputSchema: tool.output as never } : {}),
      annotations: tool.annotations
    }))
  }))

  // Remembered per caller, not per server: the next POST is another server.
  server.setRequestHandler(SetLevelRequestSchema, (request) => {
    caller.logLevels.set(caller.key, request.params.level)
    return {}
  })
  server.setNotificationHandler(CancelledNotificationSchema, (notification) => {
    const { requestId } = notification.params
    if (requestId !== undefined) caller.cancel(requestId)
  })

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { name, arguments: args = {} } = request.params
    switch (name) {
      case 'search_tools': {
        const { query, limit = 20 } = parseArgs<Static<typeof CODE_MODE_TOOLS.search_tools.input>>(SearchArgs, args, name)
        const words = query.toLowerCase().split(/\s+/).filter((word) => word !== '')
        // Ranked: more query words found, and found in the name, come first.
        const scored = (await caller.callableTools()).map((tool) => {
          const haystack = `${tool.name}\n${tool.description}`.toLowerCase()
          const hits = words.filter((word) => haystack.includes(word)).length
          const inName = words.filter((word) => tool.name.toLowerCase().includes(word)).length
          return { tool, score: hits * 2 + inName }
        }).filter(({ score }) => words.length === 0 || score > 0)
        scored.sort((a, b) => b.score - a.score || (a.tool.name < b.tool.name ? -1 : 1))
        const tools = scored.slice(0, limit).map(({ tool }) => ({ name: tool.name, description: oneLine(tool.description) }))
        const listing = tools.length === 0 ? `No callable tool matches "${query}".` : tools.map((tool) => `${tool.name}: ${tool.description}`).join('\n')
        return { content: text(listing), structuredContent: { tools } }
      }
      case 'describe_tools': {
        const { names = [], modules = [] } = parseArgs<Static<typeof CODE_MODE_TOOLS.describe_tools.input>>(DescribeArgs, args, name)
        if (names.length === 0 && modules.length === 0) throw new McpError(ErrorCode.InvalidParams, 'Invalid arguments for describe_tools: give names (tools, from search_tools) or modules (sandbox modules, e.g. ["zod"])')
        let tools = ''
        if (names.length > 0) {
          const callable = await caller.callableTools()
          const wanted = new Set(names)
          const found = callable.filter((tool) => wanted.has(tool.name))
          const missing = names.filter((n) => !found.some((tool) => tool.name === n))
          const note = missing.length === 0 ? '' : `// Not callable with this token (unknown, disabled or not permitted): ${missing.join(', ')}\n`
          tools = `${note}${await caller.declarations(found)}`
        }
        const separator = tools === '' || tools.endsWith('\n') ? '' : '\n'
        return { content: text(`${tools}${separator}${await describeModules(caller, modules)}`) }
      }
      case 'check_script': {
        const request = parseArgs<CheckArgs>(CheckArgsCheck, args, name)
        const checked = await caller.check(request)
        if ('refusal' in checked) return refusalResult(checked.refusal)
        const { report } = checked
        const summary = report.ok ? `OK: ${report.toolCalls.length} literal tool calls, all callable` : report.errors.map((e) => `${e.code} at ${e.line}:${e.column}: ${e.message}`).join('\n')
        return { content: text(summary), structuredContent: report as unknown as Record<string, unknown> }
      }
      case 'execute_script': {
        const request = parseArgs<ExecuteArgs>(ExecuteArgsCheck, args, name)
        const controller = new AbortController()
        const forget = caller.running.add(caller.key, extra.requestId, controller)
        const progressToken = extra._meta?.progressToken
        let progress = 0
        const notify = (notification: ServerNotification): void => { extra.sendNotification(notification).catch(() => {}) }
        const log = (level: LoggingLevel, logger: string, data: unknown): void => {
          if (caller.logLevels.allows(caller.key, level)) notify({ method: 'notifications/message', params: { level, logger, data } })
        }
        const onEvent = (event: RunEvent): void => {
          let message: string
          if (event.type === 'log') {
            log(CONSOLE_LEVELS[event.data.level] ?? 'info', 'console', event.data.message)
            message = `console.${event.data.level}`
          } else if (event.type === 'tool_call') {
            log('info', 'tool', { index: event.data.index, tool: event.data.tool, phase: 'call' })
            message = `calling ${event.data.tool}`
          } else if (event.type === 'tool_result') {
            log(event.data.code === 'OK' ? 'info' : 'warning', 'tool', { index: event.data.index, code: event.data.code, durationMs: event.data.durationMs, phase: 'result' })
            message = `tool call ${event.data.index} ${event.data.code}`
          } else {
            message = event.type
          }
          if (progressToken !== undefined) notify({ method: 'notifications/progress', params: { progressToken, progress: ++progress, message } })
        }
        try {
          const ran = await caller.execute(request, { onEvent, signal: AbortSignal.any([controller.signal, extra.signal]) })
          if ('refusal' in ran) return refusalResult(ran.refusal)
          const { result } = ran
          return {
            content: text(renderResult(result)),
            structuredContent: result as unknown as Record<string, unknown>,
            ...(result.success ? {} : { isError: true })
          }
        } finally {
          forget()
        }
      }
      default:
        throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${name}. This server has search_tools, describe_tools, check_script and execute_script; the platform's tools are called from a script.`)
    }
  })
  return server
}
