import type { EnclaveErrorCode, ExecutionError } from './types.ts'

export const ERROR_CODES: readonly EnclaveErrorCode[] = [
  'VALIDATION_ERROR', 'EXECUTION_ERROR', 'TIMEOUT', 'MEMORY_LIMIT_EXCEEDED', 'OUTPUT_LIMIT_EXCEEDED',
  'MAX_TOOL_CALLS', 'TOOL_QUOTA_EXCEEDED', 'PERMISSION_DENIED', 'TOOL_DISABLED', 'UNKNOWN_TOOL',
  'TOOL_RATE_LIMITED', 'TOOL_ERROR', 'INTERNAL_ERROR'
]

/** Codes a script can catch when a tool call rejects with them. */
export const CATCHABLE_TOOL_CODES: ReadonlySet<string> = new Set([
  'PERMISSION_DENIED', 'TOOL_DISABLED', 'UNKNOWN_TOOL', 'TOOL_RATE_LIMITED', 'TOOL_ERROR'
])

/** Codes that end an execution at once when a tool handler raises them. */
export const FATAL_TOOL_CODES: ReadonlySet<string> = new Set(['MAX_TOOL_CALLS', 'TOOL_QUOTA_EXCEEDED'])

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
  PERMISSION_DENIED: 'ToolError',
  TOOL_DISABLED: 'ToolError',
  UNKNOWN_TOOL: 'ToolError',
  TOOL_RATE_LIMITED: 'ToolError',
  TOOL_ERROR: 'ToolError',
  INTERNAL_ERROR: 'InternalError'
}

export function enclaveError (code: EnclaveErrorCode, message: string, name = NAMES[code]): ExecutionError {
  return { name, code, message }
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
