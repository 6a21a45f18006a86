import ivm from 'isolated-vm'
import { checkStrict, syntaxError } from './ast-check.ts'
import { CATCHABLE_TOOL_CODES, enclaveError, isErrorCode } from './errors.ts'
import type { IsolatePool, Slot, WarmContext } from './isolate-pool.ts'
import type { DoneMessage, RunLimits, ToMain, ToRunner } from './protocol.ts'
import type { EnclaveErrorCode, ExecutionError } from './types.ts'

type RunMessage = Extract<ToRunner, { t: 'run' }>
type ResultMessage = Extract<ToRunner, { t: 'ret' }>

// Tool names are plain ASCII: homoglyphs, invisible and bidi characters never reach a handler.
const TOOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/
const IDLE_PROBE_MS = 100

/** One execution inside a runner: from the run message to the done message. */
export class Execution {
  private finished = false
  private timer: NodeJS.Timeout | undefined
  private slot: Slot | undefined
  private warm: WarmContext | undefined
  private reused = false
  private readonly logChunks: string[] = []
  private logBytes = 0
  private toolCalls = 0
  private cpu0 = 0n
  private readonly limits: RunLimits
  private readonly maxLog: number

  private readonly msg: RunMessage
  private readonly pool: IsolatePool
  private readonly out: (m: ToMain) => void
  private readonly onEnd: () => void

  constructor (msg: RunMessage, pool: IsolatePool, out: (m: ToMain) => void, onEnd: () => void) {
    this.msg = msg
    this.pool = pool
    this.out = out
    this.onEnd = onEnd
    this.limits = msg.o
    this.maxLog = Math.min(msg.o.maxConsoleBytes, msg.o.maxOutputBytes)
  }

  async start (): Promise<void> {
    const { o, code, key } = this.msg
    // The wall clock covers everything: waiting for an isolate, sync code, awaits, tool calls.
    this.timer = setTimeout(() => this.fail('TIMEOUT', `Execution timed out after ${o.timeoutMs} ms`, false), o.timeoutMs)
    if (o.astCheck) {
      const problem = checkStrict(code)
      if (problem !== null) { this.fail('VALIDATION_ERROR', problem, true); return }
    }
    let acquired = this.pool.acquire(key, o.memoryLimitMB)
    let warm = await acquired.slot.next
    if (warm === null) { // that isolate went bad while idle: one more try with another
      acquired = this.pool.acquire(key, o.memoryLimitMB)
      warm = await acquired.slot.next
    }
    const slot = acquired.slot
    if (warm === null) { this.pool.release(slot, false); this.fail('INTERNAL_ERROR', 'Could not prepare an isolate', true); return }
    if (this.finished) { this.pool.release(slot, true, warm); return }
    this.slot = slot
    this.warm = warm
    this.reused = acquired.reused
    slot.current = this.msg.id
    slot.runs++
    try { this.cpu0 = slot.isolate.cpuTime } catch { /* disposed meanwhile */ }
    // `send` queues (isolated-vm delivers it when the isolate's task ends); `alarm` is
    // synchronous, for limits that must end the run even inside a loop that never yields.
    const send = new ivm.Callback(this.onIsolate, { ignored: true })
    const alarm = new ivm.Callback(this.onAlarm)
    const config = JSON.stringify({ maxLog: this.maxLog, maxOut: o.maxOutputBytes, maxCalls: o.maxToolCalls })
    // No isolated-vm timeout here: the wall-clock timer disposes the isolate, which also stops
    // work the script left running after it returned (and makes that outcome a TIMEOUT).
    warm.init.apply(undefined, [send, alarm, config, code]).catch((err: unknown) => this.onIsolateError(err))
  }

  /** A tool result or refusal from the main process. */
  onToolResult (msg: ResultMessage): void {
    if (this.finished) return
    if (msg.e !== undefined) {
      if (msg.f === true) {
        const code = isErrorCode(msg.e.code) ? msg.e.code : 'INTERNAL_ERROR'
        this.fail(code, msg.e.message, false)
        return
      }
      this.deliver(msg.c, 'e', JSON.stringify(msg.e))
      return
    }
    this.deliver(msg.c, 'v', msg.v ?? '')
  }

  /** Ends the run from outside (the runner is shutting down). */
  abort (message: string): void {
    this.fail('INTERNAL_ERROR', message, false)
  }

  // Messages from the isolate: ('C', id, name, argsJson, logs) | ('R', kind, payload, logs)
  private readonly onIsolate = (type: unknown, a: unknown, b: unknown, c: unknown, d: unknown): void => {
    if (this.finished) return
    if (type === 'C') this.onCall(a as number, b, c, d)
    else if (type === 'R') this.onResult(a, b, c)
  }

  // A limit tripped inside the isolate (code, message, logs); runs while the isolate waits.
  private readonly onAlarm = (code: unknown, _message: unknown, logs: unknown): void => {
    if (this.finished) return
    if (!this.addLogs(logs)) return
    const o = this.limits
    if (code === 'MAX_TOOL_CALLS') this.fail('MAX_TOOL_CALLS', `Tool call limit exceeded: at most ${o.maxToolCalls} calls per execution`, false)
    else this.fail('OUTPUT_LIMIT_EXCEEDED', `Console output exceeded ${this.maxLog} bytes`, false)
  }

  private onCall (callId: number, name: unknown, args: unknown, logs: unknown): void {
    if (!this.addLogs(logs)) return
    const o = this.limits
    this.toolCalls++
    if (this.toolCalls > o.maxToolCalls) {
      this.fail('MAX_TOOL_CALLS', `Tool call limit exceeded: at most ${o.maxToolCalls} calls per execution`, false)
      return
    }
    if (typeof name !== 'string' || !TOOL_NAME.test(name)) {
      this.refuse(callId, 'UNKNOWN_TOOL', `Unknown tool: ${printable(String(name))}`)
      return
    }
    const json = typeof args === 'string' ? args : ''
    if (json.length > o.maxToolArgsBytes || (json.length * 3 > o.maxToolArgsBytes && Buffer.byteLength(json) > o.maxToolArgsBytes)) {
      this.refuse(callId, 'TOOL_ERROR', `Tool arguments exceed ${o.maxToolArgsBytes} bytes`)
      return
    }
    this.out({ t: 'call', id: this.msg.id, c: callId, n: name, a: json })
  }

  private onResult (kind: unknown, payload: unknown, logs: unknown): void {
    if (!this.addLogs(logs)) return
    const text = typeof payload === 'string' ? payload : ''
    const o = this.limits
    if (kind === 'v') {
      const total = (text === '' ? 0 : Buffer.byteLength(text)) + this.logBytes
      if (total > o.maxOutputBytes) {
        this.fail('OUTPUT_LIMIT_EXCEEDED', `Output is ${total} bytes, over the limit of ${o.maxOutputBytes} bytes`, true)
        return
      }
      this.finish({ ok: true, v: text === '' ? undefined : text }, true)
    } else if (kind === 'o') {
      this.fail('OUTPUT_LIMIT_EXCEEDED', `Output is over ${text} bytes, over the limit of ${o.maxOutputBytes} bytes`, true)
    } else if (kind === 'e') {
      this.finish({ ok: false, e: scriptError(text, o.memoryLimitMB) }, true)
    } else if (kind === 'x') {
      const e = parseError(text)
      const message = e?.name === 'EvalError'
        ? 'Code is too large for the memory limit'
        : syntaxError(this.msg.code) ?? `SyntaxError: ${e?.message ?? 'invalid code'}`
      this.finish({ ok: false, e: enclaveError('VALIDATION_ERROR', message) }, true)
    } else {
      this.fail('INTERNAL_ERROR', 'Unexpected message from the isolate', false)
    }
  }

  private onIsolateError (err: unknown): void {
    if (this.finished) return
    const message = err instanceof Error ? err.message : String(err)
    if (/memory limit/i.test(message)) {
      this.fail('MEMORY_LIMIT_EXCEEDED', `Memory limit of ${this.limits.memoryLimitMB} MB exceeded`, false)
    } else if (/timed out/i.test(message)) {
      this.fail('TIMEOUT', `Execution timed out after ${this.limits.timeoutMs} ms`, false)
    } else if (/disposed/i.test(message)) {
      this.fail('INTERNAL_ERROR', 'The isolate was lost during execution', false)
    }
    // Anything else is a promise the script left rejected and unhandled, which isolated-vm
    // reports here; the script itself goes on and reports through `send`.
  }

  /** Counts logs exactly (UTF-8); false when the run just ended over the limit. */
  private addLogs (chunk: unknown): boolean {
    if (typeof chunk !== 'string' || chunk === '') return true
    const bytes = Buffer.byteLength(chunk) - 1 // the isolate counts entry + separator; '[' and ']' are one
    if (this.logBytes + bytes > this.maxLog) {
      this.fail('OUTPUT_LIMIT_EXCEEDED', `Console output exceeded ${this.maxLog} bytes`, false)
      return false
    }
    this.logBytes += bytes
    this.logChunks.push(chunk)
    return true
  }

  private refuse (callId: number, code: EnclaveErrorCode, message: string): void {
    this.deliver(callId, 'e', JSON.stringify({ code, message }))
  }

  private deliver (callId: number, kind: 'v' | 'e', data: string): void {
    const warm = this.warm
    if (warm === undefined) return
    // Not applyIgnored: the tenant code this resumes may hit the memory limit, and isolated-vm
    // reports that only to the caller.
    try {
      warm.deliver.apply(undefined, [callId, kind, data]).catch((err: unknown) => this.onIsolateError(err))
    } catch { /* the isolate is gone; the run ends elsewhere */ }
  }

  /** Ends the run with an error. `reusable`: the isolate is clean enough to serve the key again. */
  private fail (code: EnclaveErrorCode, message: string, reusable: boolean): void {
    this.finish({ ok: false, e: enclaveError(code, message) }, reusable)
  }

  private finish (fields: Pick<DoneMessage, 'ok' | 'v' | 'e'>, reusable: boolean): void {
    if (this.finished) return
    this.finished = true
    clearTimeout(this.timer)
    const slot = this.slot
    const done: DoneMessage = {
      t: 'done', id: this.msg.id, ...fields, l: this.logChunks, tc: this.toolCalls, iso: slot?.id, reused: this.reused
    }
    if (slot === undefined || slot.disposed) {
      this.out(done)
      this.onEnd()
      return
    }
    try { done.cpu = Number(slot.isolate.cpuTime - this.cpu0) / 1e6 } catch { /* disposed */ }
    if (!reusable) {
      // Timeouts, memory, aborts and fatal tool errors: the script may still be running, and
      // disposing the isolate is the one thing that stops it for sure. Deferred: this may run
      // inside a synchronous call from that very isolate.
      setImmediate(() => this.pool.release(slot, false))
      this.out(done)
      this.onEnd()
      return
    }
    const warm = this.warm
    if (warm !== undefined) {
      for (const ref of [warm.init, warm.deliver]) { try { ref.release() } catch { /* gone */ } }
      try { warm.context.release() } catch { /* gone */ }
    }
    // Heap use, and a check that the isolate went idle: a script can return while leaving work
    // behind (a microtask loop). An isolate that does not answer soon is disposed, not reused.
    let settled = false
    const settle = (idle: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      this.pool.release(slot, idle)
      this.out(done)
      this.onEnd()
    }
    const deadline = setTimeout(() => settle(false), IDLE_PROBE_MS)
    slot.isolate.getHeapStatistics().then((heap) => { done.mem = heap.used_heap_size; settle(true) }, () => settle(false))
  }
}

function parseError (text: string): ExecutionError | undefined {
  try {
    const e = JSON.parse(text) as Partial<ExecutionError>
    if (typeof e.name === 'string' && typeof e.message === 'string') return { name: e.name, code: isErrorCode(e.code) ? e.code : 'EXECUTION_ERROR', message: e.message }
  } catch { /* fall through */ }
  return undefined
}

/** The script's uncaught error; only codes a script may end with are kept. */
function scriptError (text: string, memoryLimitMB: number): ExecutionError {
  const e = parseError(text)
  if (e === undefined) return enclaveError('EXECUTION_ERROR', 'Uncaught exception', 'Error')
  if (e.name === 'RangeError' && e.message === 'Array buffer allocation failed') {
    return enclaveError('MEMORY_LIMIT_EXCEEDED', `Array buffer allocation failed: memory limit of ${memoryLimitMB} MB`)
  }
  if (e.code !== 'EXECUTION_ERROR' && !CATCHABLE_TOOL_CODES.has(e.code)) return { ...e, code: 'EXECUTION_ERROR' }
  return e
}

/** A name as ASCII: invisible and look-alike characters show as escapes. */
function printable (s: string): string {
  const cut = s.length > 64 ? s.slice(0, 64) + '...' : s
  return '"' + cut.replace(/[^\x20-\x7e]|["\\]/g, (ch) => ch === '"' || ch === '\\' ? '\\' + ch : '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0')) + '"'
}
