import { CATCHABLE_TOOL_CODES, EnclaveToolError, FATAL_TOOL_CODES, isErrorCode, scrubMessage } from '../common/errors.ts'

/**
 * Arguments as the handler sees them: parsed from the isolate's JSON, so they are plain data
 * of this realm. `__proto__` keys are dropped so that no handler's merge can set a prototype.
 */
export function parseToolArgs (json: string): unknown {
  if (json === '') return undefined
  if (json.includes('__proto__') || json.includes('\\u')) {
    return JSON.parse(json, (key, value: unknown) => key === '__proto__' ? undefined : value)
  }
  return JSON.parse(json)
}

/** A handler's return value as JSON ('' for undefined). */
export function toolResultJson (value: unknown): string {
  if (value === undefined) return ''
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    throw new EnclaveToolError('TOOL_ERROR', `Tool result is not JSON-serialisable: ${err instanceof Error ? err.message : String(err)}`)
  }
  return json ?? ''
}

export interface ToolFailure { e: { code: string, message: string }, f?: boolean }

/**
 * A handler's rejection as the script will see it: an enclave code it can catch, or a fatal
 * one that ends the execution. Only the code and a scrubbed message cross; never a stack.
 */
export function toolFailure (err: unknown): ToolFailure {
  const e = err as { code?: unknown, fatal?: unknown, message?: unknown } | null
  const message = scrubMessage(typeof e?.message === 'string' ? e.message : String(err))
  const code = typeof e === 'object' && e !== null ? e.code : undefined
  if (isErrorCode(code)) {
    const fatal = e?.fatal === true || (e?.fatal === undefined && FATAL_TOOL_CODES.has(code))
    if (fatal) return { e: { code, message }, f: true }
    return { e: { code: CATCHABLE_TOOL_CODES.has(code) ? code : 'TOOL_ERROR', message } }
  }
  if (e?.fatal === true) return { e: { code: 'INTERNAL_ERROR', message }, f: true }
  return { e: { code: 'TOOL_ERROR', message } }
}
