import { ERROR_CODES } from '../../../schemas/execution-result.ts'
import { formatMessage } from '../../errors/registry.ts'
import type { EnclaveErrorCode, ExecutionError } from './types.ts'

export { ERROR_CODES }

/** Codes a script can catch when a tool call rejects with them. */
export const CATCHABLE_TOOL_CODES: ReadonlySet<string> = new Set([
  'PERMISSION_DENIED', 'TOOL_DISABLED', 'TOOL_NOT_FOUND', 'TOOL_RATE_LIMITED', 'TOOL_ERROR', 'APPROVAL_REJECTED'
])

/** Codes that end an execution at once when a tool handler raises them. */
export const FATAL_TOOL_CODES: ReadonlySet<string> = new Set(['MAX_TOOL_CALLS', 'TOOL_QUOTA_EXCEEDED', 'USER_QUOTA_EXCEEDED'])

const KNOWN = new Set<string>(ERROR_CODES)
export function isErrorCode (code: unknown): code is EnclaveErrorCode {
  return typeof code === 'string' && KNOWN.has(code)
}

const NAMES: Record<EnclaveErrorCode, string> = {
  VALIDATION_ERROR: 'ValidationError',
  EXECUTION_ERROR: 'Error',
  TIMEOUT: 'TimeoutError',
  MEMORY_LIMIT_EXCEEDED: 'MemoryLimitError',
  OUTPUT_LIMIT_EXCEEDED: 'OutputLimitError',
  MAX_TOOL_CALLS: 'ToolCallLimitError',
  TOOL_QUOTA_EXCEEDED: 'ToolQuotaError',
  USER_QUOTA_EXCEEDED: 'UserQuotaError',
  PERMISSION_DENIED: 'ToolError',
  TOOL_DISABLED: 'ToolError',
  TOOL_NOT_FOUND: 'ToolError',
  TOOL_RATE_LIMITED: 'ToolError',
  TOOL_ERROR: 'ToolError',
  APPROVAL_REQUIRED: 'ApprovalRequiredError',
  APPROVAL_EXPIRED: 'ApprovalExpiredError',
  APPROVAL_REJECTED: 'ApprovalRejectedError',
  REPLAY_DIVERGED: 'ReplayDivergedError',
  REPLAY_RECORD_TOO_LARGE: 'ReplayRecordTooLargeError',
  APPROVAL_WAIT_LIMIT: 'ApprovalWaitLimitError',
  APPROVAL_STORAGE_EXCEEDED: 'ApprovalStorageError',
  RUNNER_CRASHED: 'RunnerCrashedError',
  INTERNAL_ERROR: 'InternalError',
  CANCELLED: 'CancelledError',
  SESSION_ENDED: 'SessionExpiredError'
}

export function enclaveError (code: EnclaveErrorCode, message: string, name = NAMES[code]): ExecutionError {
  return { name, code, message }
}

// The errors the enclave itself raises, each built in one place, with the registry's message.

export function timeoutError (timeoutMs: number, detail = ''): ExecutionError {
  return enclaveError('TIMEOUT', formatMessage('TIMEOUT', { timeoutMs, detail }))
}

export function toolCallLimitError (maxToolCalls: number): ExecutionError {
  return enclaveError('MAX_TOOL_CALLS', formatMessage('MAX_TOOL_CALLS', { maxToolCalls }))
}

export function consoleLimitError (maxConsoleBytes: number): ExecutionError {
  return enclaveError('OUTPUT_LIMIT_EXCEEDED', formatMessage('OUTPUT_LIMIT_EXCEEDED', { maxConsoleBytes }))
}

export function memoryLimitError (memoryLimitMB: number, detail = ''): ExecutionError {
  return enclaveError('MEMORY_LIMIT_EXCEEDED', formatMessage('MEMORY_LIMIT_EXCEEDED', { memoryLimitMB, detail }))
}

/** The caller cancelled the run; like a timeout, the script cannot catch it. */
export function cancelledError (): ExecutionError {
  return enclaveError('CANCELLED', formatMessage('CANCELLED', {}))
}

/** Another tenant's script took down the runner this run shared, after this run had called tools. */
export function runnerCrashedError (): ExecutionError {
  return enclaveError('RUNNER_CRASHED', formatMessage('RUNNER_CRASHED', {}))
}

/** A JSON error from the isolate, or undefined when it is not one. */
export function parseIsolateError (text: string): ExecutionError | undefined {
  try {
    const e = JSON.parse(text) as Partial<ExecutionError>
    if (typeof e.name === 'string' && typeof e.message === 'string') return { name: e.name, code: isErrorCode(e.code) ? e.code : 'EXECUTION_ERROR', message: e.message }
  } catch { /* fall through */ }
  return undefined
}

/**
 * The script's uncaught error. Only codes a script may end with are kept: a thrown object that
 * names a limit (e.g. `{name: 'RangeError', message: 'Array buffer allocation failed'}`, or a
 * `code` of MEMORY_LIMIT_EXCEEDED) is an EXECUTION_ERROR like any other throw. Real limits are
 * reported by the host, never taken from what the script threw.
 */
export function scriptError (text: string): ExecutionError {
  const e = parseIsolateError(text)
  if (e === undefined) return enclaveError('EXECUTION_ERROR', 'Uncaught exception', 'Error')
  if (e.code !== 'EXECUTION_ERROR' && !CATCHABLE_TOOL_CODES.has(e.code)) return { ...e, code: 'EXECUTION_ERROR' }
  return e
}

/**
 * What a toolHandler throws to choose the code the script sees. `fatal` (the default for
 * MAX_TOOL_CALLS and TOOL_QUOTA_EXCEEDED) ends the execution at once, uncatchable.
 */
export class EnclaveToolError extends Error {
  readonly code: EnclaveErrorCode
  readonly fatal: boolean
  constructor (code: EnclaveErrorCode, message: string, options: { fatal?: boolean, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'EnclaveToolError'
    this.code = code
    this.fatal = options.fatal ?? FATAL_TOOL_CODES.has(code)
  }
}

// Absolute paths and file URLs say where the host's code lives: never shown to scripts or clients.
const PATHS = /(file:\/\/\/?[^\s'")]+)|((?<=^|[\s('"=:])\/(?:[\w.@+~-]+\/)+[\w.@+~-]*)|(\b[A-Za-z]:\\(?:[^\\\s'"]+\\)+[^\\\s'"]*)/g

/** A message safe to show a script: no host paths, bounded length. */
export function scrubMessage (message: string, max = 2000): string {
  const clean = message.replace(PATHS, '<path>')
  return clean.length > max ? clean.slice(0, max) + '…' : clean
}
