// One execution inside a runner process: from the run message to the done message. Over 250
// lines because it is one state machine (isolate, limits, logs, tool calls, the end and whether
// the isolate really stopped); what the isolate's reports mean is decided in isolate-verdicts.ts.
import ivm from 'isolated-vm'
import { prepareScript } from '../common/ast-check.ts'
import {
  cancelledError, consoleLimitError, enclaveError, isErrorCode, memoryLimitError, timeoutError, toolCallLimitError
} from '../common/errors.ts'
import { heapAfterRun, type IsolatePool, type Slot, type WarmContext } from './isolate-pool.ts'
import {
  ISOLATE_CALL, ISOLATE_LOGS, ISOLATE_REFUSED, ISOLATE_RESULT, type DoneMessage, type RefusedCallCode, type RunLimits, type RunMessage, type ToMain, type ToolResultMessage
} from '../protocol/messages.ts'
import type { ExecutionError } from '../common/types.ts'
import { checkToolCall, isolateFailure, refusedName, resultVerdict } from './isolate-verdicts.ts'
import { HeapPeak } from './heap-peak.ts'
import type { IsolateConfig } from './isolate/script-outcome.ts'
import { ModuleHost } from './sandbox-modules.ts'
import { moduleSnapshots } from './module-snapshots.ts'
import { IsolateEntries } from './isolate-entries.ts'

/** The sandbox modules' compiled scripts and code caches, shared by this runner's isolates. */
const moduleHost = new ModuleHost()

const IDLE_PROBE_MS = 100
const MB = 1024 * 1024

export class IsolateRun {
  private finished = false
  private timer: NodeJS.Timeout | undefined
  private slot: Slot | undefined
  private warm: WarmContext | undefined
  private reused = false
  private readonly logChunks: string[] = []
  /** The values the script drew live after its last tool call (see nondeterminism.ts). */
  private drawn: string | undefined
  private logBytes = 0
  private toolCalls = 0
  /** Calls refused before the supervisor saw them, told to it (at most maxToolCalls + 1). */
  private refusedCalls = 0
  private cpu0 = 0n
  private readonly heap = new HeapPeak()
  private readonly entries = new IsolateEntries({
    error: (err) => this.onIsolateError(err),
    freed: () => this.out({ t: 'freed', id: this.msg.id }),
    stuck: () => this.out({ t: 'stuck', id: this.msg.id })
  })

  /** V8 refused an ArrayBuffer for this run (told by the bootstrap, which the script cannot fake). */
  private allocationFailed = false
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

  get id (): string { return this.msg.id }

  /** CPU ms the isolate has spent on this run so far (read live, without the isolate's lock). */
  cpuMs (): number | undefined {
    const slot = this.slot
    if (slot === undefined || slot.disposed || this.finished) return undefined
    try { return Number(slot.isolate.cpuTime - this.cpu0) / 1e6 } catch { return undefined }
  }

  /** Takes a heap sample for the run's peak (on the runner's CPU sampling tick). */
  sampleHeap (): void {
    const slot = this.slot
    if (slot !== undefined && !slot.disposed && !this.finished) this.heap.sample(slot.isolate)
  }

  async start (): Promise<void> {
    const { o, code, key } = this.msg
    // The wall clock covers everything: waiting for an isolate, sync code, awaits, tool calls.
    this.timer = setTimeout(() => this.end(timeoutError(o.timeoutMs), false), Math.max(1, o.timeoutMs - o.waitedMs))
    const prepared = prepareScript(code, o.astCheck, o.modules ?? [])
    if (!prepared.ok) { this.end(enclaveError('VALIDATION_ERROR', prepared.message), true); return }
    // Modules come evaluated with the context when this runner has a snapshot of them (module-snapshots.ts).
    const snapshot = prepared.modules.length > 0 ? moduleSnapshots.get(prepared.modules, o.memoryLimitMB) : undefined
    let acquired = this.pool.acquire(key, o.memoryLimitMB, snapshot)
    let warm = await acquired.slot.next
    if (warm === null) { // that isolate went bad while idle: one more try with another
      acquired = this.pool.acquire(key, o.memoryLimitMB, snapshot)
      warm = await acquired.slot.next
    }
    const slot = acquired.slot
    if (warm === null) { this.pool.release(slot, false); this.end(enclaveError('INTERNAL_ERROR', 'Could not prepare an isolate'), true); return }
    if (this.finished) { this.pool.release(slot, true, warm); return }
    this.slot = slot
    this.warm = warm
    this.reused = acquired.reused
    slot.current = this.msg.id
    slot.runs++
    try { this.cpu0 = slot.isolate.cpuTime } catch { /* disposed meanwhile */ }
    this.heap.sample(slot.isolate)
    // `send` queues (isolated-vm delivers it when the isolate's task ends); `alarm` is
    // synchronous, for limits that must end the run even inside a loop that never yields.
    const send = new ivm.Callback(this.onIsolate, { ignored: true })
    const alarm = new ivm.Callback(this.onAlarm)
    const config = JSON.stringify({
      maxLog: this.maxLog,
      maxOut: o.maxOutputBytes,
      maxCalls: o.maxToolCalls,
      maxArgs: o.maxToolArgsBytes,
      memBytes: o.memoryLimitMB * MB,
      live: this.msg.ev === true,
      ...(this.msg.rp !== undefined ? { replay: this.msg.rp } : {}),
      ...(this.msg.rec !== undefined ? { record: this.msg.rec } : {})
    } satisfies IsolateConfig)
    if (prepared.modules.length > 0 && slot.snapshot === undefined) {
      // Evaluated in this run's context, on its clock, CPU and heap (see sandbox-modules.ts).
      try {
        await this.entries.around(async () => { await moduleHost.load(slot.isolate, warm.context, prepared.modules, o.timeoutMs) })
      } catch (err) {
        this.onIsolateError(err)
        if (!this.finished) this.end(enclaveError('INTERNAL_ERROR', 'A sandbox module failed to load'), false)
        return
      }
      if (this.finished) return
    }
    // No isolated-vm timeout here: the wall-clock timer disposes the isolate, which also stops
    // work the script left running after it returned (and makes that outcome a TIMEOUT).
    this.entries.enter(warm.init, [send, alarm, config, prepared.code])
  }

  /** A tool result or refusal from the main process. */
  onToolResult (msg: ToolResultMessage): void {
    if (this.finished) return
    if (msg.e !== undefined) {
      if (msg.f === true) {
        this.end(enclaveError(isErrorCode(msg.e.code) ? msg.e.code : 'INTERNAL_ERROR', msg.e.message), false)
        return
      }
      this.deliver(msg.c, 'e', JSON.stringify(msg.e))
      return
    }
    this.deliver(msg.c, 'v', msg.v ?? '')
  }

  /** Ends the run from outside (the runner is shutting down). */
  abort (message: string): void {
    this.end(enclaveError('INTERNAL_ERROR', message), false)
  }

  /** The caller cancelled: ends the run as a timeout does (the isolate is disposed, nothing catches it). */
  cancel (): void {
    this.end(cancelledError(), false)
  }

  // Messages from the isolate: (ISOLATE_CALL, id, name, argsJson, logs) | (ISOLATE_RESULT, kind, payload, logs)
  private readonly onIsolate = (type: unknown, a: unknown, b: unknown, c: unknown, d: unknown, e?: unknown): void => {
    if (this.finished) return
    if (type === ISOLATE_CALL) this.onCall(a as number, b, c, d, e)
    else if (type === ISOLATE_RESULT) this.onResult(a, b, c, d)
    else if (type === ISOLATE_LOGS) this.addLogs(a)
    else if (type === ISOLATE_REFUSED) this.onRefusedInIsolate(a, b, c, d)
  }

  // The isolate refused a call itself (its name is not a string, its arguments are not JSON or
  // too large). The isolate counts it against the limit; the supervisor bounds these notices too.
  private onRefusedInIsolate (code: unknown, name: unknown, size: unknown, logs: unknown): void {
    if (!this.addLogs(logs)) return
    if (code !== 'TOOL_ERROR') return
    this.tellRefused('TOOL_ERROR', name, size)
  }

  /** Tells the supervisor of a call refused in this process or in the isolate: it is audited. */
  private tellRefused (code: RefusedCallCode, name: unknown, size: unknown): void {
    if (this.refusedCalls > this.limits.maxToolCalls) return
    this.refusedCalls++
    const bytes = Number.isSafeInteger(size) && (size as number) > 0 ? size as number : 0
    this.out({ t: 'refused', id: this.msg.id, n: refusedName(name), code, b: bytes })
  }

  // A limit tripped inside the isolate (code, message, logs); runs while the isolate waits.
  private readonly onAlarm = (code: unknown, message: unknown, logs: unknown, detail?: unknown): void => {
    if (this.finished) return
    if (code === 'ALLOCATION_FAILED') { this.allocationFailed = true; return }
    if (!this.addLogs(logs)) return
    const o = this.limits
    if (code === 'MAX_TOOL_CALLS') {
      this.tellRefused('MAX_TOOL_CALLS', detail, 0)
      this.end(toolCallLimitError(o.maxToolCalls), false)
    } else if (code === 'MEMORY_LIMIT_EXCEEDED') this.end(enclaveError('MEMORY_LIMIT_EXCEEDED', String(message).slice(0, 500)), false)
    else this.end(consoleLimitError(this.maxLog), false)
  }

  private onCall (callId: number, name: unknown, args: unknown, logs: unknown, drawn: unknown): void {
    if (!this.addLogs(logs)) return
    const o = this.limits
    this.toolCalls++
    if (this.toolCalls > o.maxToolCalls) {
      this.tellRefused('MAX_TOOL_CALLS', name, 0)
      this.end(toolCallLimitError(o.maxToolCalls), false)
      return
    }
    const call = checkToolCall(name, args, o.maxToolArgsBytes)
    if (!call.ok) {
      this.tellRefused(call.code, name, call.size)
      this.refuse(callId, call.code, call.message)
      return
    }
    this.out({ t: 'call', id: this.msg.id, c: callId, n: call.name, a: call.json, ...(typeof drawn === 'string' && drawn !== '' ? { r: drawn } : {}) })
  }

  private onResult (kind: unknown, payload: unknown, logs: unknown, drawn: unknown): void {
    if (!this.addLogs(logs)) return
    if (typeof drawn === 'string' && drawn !== '') this.drawn = drawn
    const { fields, reusable } = resultVerdict(kind, payload, this.limits, this.logBytes, this.allocationFailed, this.msg.code)
    this.finish(fields, reusable)
  }

  private onIsolateError (err: unknown): void {
    if (this.finished) return
    const error = isolateFailure(err, this.limits)
    if (error !== undefined) this.end(error, false)
  }

  /** Counts logs exactly (UTF-8); false when the run just ended over the limit. */
  private addLogs (chunk: unknown): boolean {
    if (typeof chunk !== 'string' || chunk === '') return true
    const bytes = Buffer.byteLength(chunk) - 1 // the isolate counts entry + separator; '[' and ']' are one
    if (this.logBytes + bytes > this.maxLog) {
      this.end(consoleLimitError(this.maxLog), false)
      return false
    }
    this.logBytes += bytes
    this.logChunks.push(chunk)
    // Watched runs report their output as it comes; the done message still carries all of it.
    if (this.msg.ev === true) this.out({ t: 'log', id: this.msg.id, l: chunk })
    return true
  }

  private refuse (callId: number, code: ExecutionError['code'], message: string): void {
    this.deliver(callId, 'e', JSON.stringify({ code, message }))
  }

  private deliver (callId: number, kind: 'v' | 'e', data: string): void {
    if (this.warm !== undefined && !this.finished) this.entries.enter(this.warm.deliver, [callId, kind, data])
  }

  /** Ends the run with an error. `reusable`: the isolate is clean enough to serve the key again. */
  private end (error: ExecutionError, reusable: boolean): void {
    this.finish({ ok: false, e: error }, reusable)
  }

  private finish (fields: Pick<DoneMessage, 'ok' | 'v' | 'e'>, reusable: boolean): void {
    if (this.finished) return
    this.finished = true
    clearTimeout(this.timer)
    const slot = this.slot
    const done: DoneMessage = {
      t: 'done', id: this.msg.id, ...fields, l: this.logChunks, tc: this.toolCalls, iso: slot?.id, reused: this.reused, ...(this.drawn !== undefined ? { r: this.drawn } : {})
    }
    if (slot === undefined || slot.disposed) {
      this.out(done)
      this.onEnd()
      return
    }
    try { done.cpu = Number(slot.isolate.cpuTime - this.cpu0) / 1e6 } catch { /* disposed */ }
    if (this.heap.bytes > 0) done.pk = this.heap.bytes
    if (!reusable) {
      // Timeouts, memory, aborts and fatal tool errors: the script may still be running, and
      // disposing the isolate is the one thing that stops it for sure. Deferred: this may run
      // inside a synchronous call from that very isolate.
      setImmediate(() => this.pool.release(slot, false))
      if (this.entries.watchUntilFree()) done.busy = true
      this.out(done)
      this.onEnd()
      return
    }
    heapAfterRun(slot, this.warm, IDLE_PROBE_MS, (used) => {
      // isolated-vm's limit is soft (one large allocation passes before it is checked): a run
      // that ended above it fails, so a result never shows more memory than its tier allows.
      const over = used !== undefined && used > this.limits.memoryLimitMB * MB
      if (over) {
        Object.assign(done, { ok: false, v: undefined, e: memoryLimitError(this.limits.memoryLimitMB, ` (${Math.ceil(used / MB)} MB in use at the end)`) })
        delete done.v
      } else if (used !== undefined) done.mem = used
      if (used !== undefined) { this.heap.seen(used); done.pk = this.heap.bytes }
      this.pool.release(slot, used !== undefined && !over)
      this.out(done)
      this.onEnd()
    })
  }
}
