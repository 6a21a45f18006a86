// What the isolate's reports mean for a run, decided without the run's state: a tool call's name
// and arguments, the script's outcome, an error isolated-vm raised. isolate-run.ts acts on them.
import { syntaxError } from '../common/ast-check.ts'
import { enclaveError, memoryLimitError, parseIsolateError, scriptError, timeoutError } from '../common/errors.ts'
import type { DoneMessage, RefusedCallCode, RunLimits } from '../protocol/messages.ts'
import type { ExecutionError } from '../common/types.ts'

// Tool names are plain ASCII: homoglyphs, invisible and bidi characters never reach a handler.
const TOOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/

export type CallVerdict =
  | { ok: true, name: string, json: string }
  | { ok: false, code: RefusedCallCode & ExecutionError['code'], size: number, message: string }

/** A call the isolate let through, checked again here: its name and the exact bytes of its arguments. */
export function checkToolCall (name: unknown, args: unknown, maxToolArgsBytes: number): CallVerdict {
  if (typeof name !== 'string' || !TOOL_NAME.test(name)) {
    return { ok: false, code: 'TOOL_NOT_FOUND', size: typeof args === 'string' ? args.length : 0, message: `Tool not found: ${printable(String(name))} (tool names are 1 to 128 ASCII letters, digits and _ . : -)` }
  }
  const json = typeof args === 'string' ? args : ''
  if (json.length > maxToolArgsBytes || (json.length * 3 > maxToolArgsBytes && Buffer.byteLength(json) > maxToolArgsBytes)) {
    return { ok: false, code: 'TOOL_ERROR', size: Buffer.byteLength(json), message: `Tool arguments exceed ${maxToolArgsBytes} bytes` }
  }
  return { ok: true, name, json }
}

/** A refused call's name as the supervisor may log it: as given when it is a valid tool name. */
export function refusedName (name: unknown): string {
  const text = typeof name === 'string' ? name : ''
  return text === '' || TOOL_NAME.test(text) ? text : printable(text)
}

/** How the run ends; `reusable`: the isolate is clean enough to serve the key again. */
export interface Verdict { fields: Pick<DoneMessage, 'ok' | 'v' | 'e'>, reusable: boolean }

const failed = (error: ExecutionError, reusable: boolean): Verdict => ({ fields: { ok: false, e: error }, reusable })

/**
 * The script's outcome (ISOLATE_RESULT): `kind` and `payload` as the bootstrap sent them,
 * `logBytes` the console output counted so far, `allocationFailed` whether V8 refused an ArrayBuffer.
 */
export function resultVerdict (kind: unknown, payload: unknown, limits: RunLimits, logBytes: number, allocationFailed: boolean, code: string): Verdict {
  const text = typeof payload === 'string' ? payload : ''
  if (kind === 'v') {
    const total = (text === '' ? 0 : Buffer.byteLength(text)) + logBytes
    if (total > limits.maxOutputBytes) return failed(enclaveError('OUTPUT_LIMIT_EXCEEDED', `Output is ${total} bytes, over the limit of ${limits.maxOutputBytes} bytes`), true)
    return { fields: { ok: true, v: text === '' ? undefined : text }, reusable: true }
  }
  if (kind === 'o') return failed(enclaveError('OUTPUT_LIMIT_EXCEEDED', `Output is over ${text} bytes, over the limit of ${limits.maxOutputBytes} bytes`), true)
  if (kind === 'e') {
    const e = scriptError(text)
    if (allocationFailed && e.name === 'RangeError' && e.message === 'Array buffer allocation failed') {
      return failed(enclaveError('MEMORY_LIMIT_EXCEEDED', `Array buffer allocation failed: memory limit of ${limits.memoryLimitMB} MB`), false)
    }
    return failed(e, true)
  }
  if (kind === 'x') {
    const e = parseIsolateError(text)
    const message = e?.name === 'EvalError'
      ? 'Code is too large for the memory limit'
      : syntaxError(code) ?? `SyntaxError: ${e?.message ?? 'invalid code'}`
    return failed(enclaveError('VALIDATION_ERROR', message), true)
  }
  return failed(enclaveError('INTERNAL_ERROR', 'Unexpected message from the isolate'), false)
}

/**
 * An error isolated-vm raised on a call into the isolate, when it ends the run. Anything else is
 * a promise the script left rejected and unhandled, which isolated-vm reports there too; the
 * script itself goes on and reports through `send`.
 */
export function isolateFailure (err: unknown, limits: RunLimits): ExecutionError | undefined {
  const message = err instanceof Error ? err.message : String(err)
  if (/memory limit/i.test(message)) return memoryLimitError(limits.memoryLimitMB)
  if (/timed out/i.test(message)) return timeoutError(limits.timeoutMs)
  if (/disposed/i.test(message)) return enclaveError('INTERNAL_ERROR', 'The isolate was lost during execution')
  return undefined
}

/** A name as ASCII: invisible and look-alike characters show as escapes. */
function printable (s: string): string {
  const cut = s.length > 64 ? s.slice(0, 64) + '...' : s
  return '"' + cut.replace(/[^\x20-\x7e]|["\\]/g, (ch) => ch === '"' || ch === '\\' ? '\\' + ch : '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0')) + '"'
}
