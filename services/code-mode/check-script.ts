import type { ToolRegistry } from '../tools/tool-registry.ts'
import { callableToolNames, permissionDeniedMessage, toolDisabledMessage, toolNotFoundMessage } from '../tools/tool-not-found.ts'
import { ServiceError } from '../errors/index.ts'
import { ScriptTimeoutError, type ScriptPool } from './script-pool.ts'
import type { ScriptLanguage } from './strip-types.ts'

export interface CheckError {
  code: 'VALIDATION_ERROR' | 'TOOL_NOT_FOUND' | 'TOOL_DISABLED' | 'PERMISSION_DENIED'
  message: string
  line: number
  column: number
}

export interface CheckedToolCall {
  name: string
  line: number
  column: number
  exists: boolean
  enabled: boolean
  permitted: boolean
}

export interface CheckReport {
  ok: boolean
  errors: CheckError[]
  toolCalls: CheckedToolCall[]
  dynamicToolCalls: number
}

export interface CheckCaller {
  tenantId: string
  permissions: string[]
}

/**
 * The pre-flight check: what a run would refuse before running, and what its literal tool calls
 * would meet, without running anything or consuming anything. Same stripper, parser and STRICT
 * walk as a run (analyzeScript), and the same registry the tool gateway asks, so a tool the
 * check calls callable is callable (until a setting changes).
 */
export async function checkScript (deps: { tools: ToolRegistry, scripts: ScriptPool }, caller: CheckCaller, request: { code: string, language?: ScriptLanguage }, options: { strict: boolean, timeoutMs?: number, onCpu?: (cpuMs: number) => void, modules?: readonly string[] }): Promise<CheckReport> {
  const { tools } = deps
  const task = { kind: 'analyze' as const, code: request.code, language: request.language ?? 'javascript', strict: options.strict, modules: [...options.modules ?? []] }
  const { stripped, analysis, cpuMs } = await deps.scripts.run(task, options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}).catch((err: unknown) => {
    // The tier's CPU bound for a check (check-limits.ts): the parse was stopped.
    if (err instanceof ScriptTimeoutError) {
      options.onCpu?.(err.timeoutMs)
      throw new ServiceError('CHECK_TIMEOUT', { timeoutMs: err.timeoutMs })
    }
    throw err
  })
  options.onCpu?.(cpuMs)
  if (analysis === undefined) {
    const failure = stripped.ok ? { message: 'SyntaxError: The TypeScript could not be read', line: 1, column: 1 } : stripped
    return { ok: false, errors: [{ code: 'VALIDATION_ERROR', message: failure.message, line: failure.line, column: failure.column }], toolCalls: [], dynamicToolCalls: 0 }
  }
  const errors: CheckError[] = analysis.problems.map((problem) => ({ code: 'VALIDATION_ERROR', ...problem }))
  const seen = new Map<string, { exists: boolean, enabled: boolean }>()
  const toolCalls: CheckedToolCall[] = []
  let callable: string[] | undefined
  for (const call of analysis.toolCalls) {
    let state = seen.get(call.name)
    if (state === undefined) {
      const tool = await tools.get(caller.tenantId, call.name)
      state = { exists: tool !== undefined, enabled: tool?.enabled ?? false }
      seen.set(call.name, state)
    }
    const permitted = caller.permissions.includes(`tool:${call.name}`)
    toolCalls.push({ ...call, ...state, permitted })
    // The refusal the gateway would give, checked in its order: existence, permission, setting.
    const refusal = !state.exists
      ? { code: 'TOOL_NOT_FOUND' as const, message: toolNotFoundMessage(call.name, callable ??= callableToolNames(await tools.list(caller.tenantId), caller.permissions)) }
      : !permitted
          ? { code: 'PERMISSION_DENIED' as const, message: permissionDeniedMessage(call.name) }
          : !state.enabled ? { code: 'TOOL_DISABLED' as const, message: toolDisabledMessage(call.name) } : undefined
    if (refusal !== undefined) errors.push({ ...refusal, message: `${refusal.message} (line ${call.line}, column ${call.column})`, line: call.line, column: call.column })
  }
  return { ok: errors.length === 0, errors, toolCalls, dynamicToolCalls: analysis.dynamicToolCalls }
}
