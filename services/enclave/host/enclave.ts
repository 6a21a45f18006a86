// The enclave's public API and the life of a run in the main process: admission by CPU share,
// placement on a runner, tool calls, completion, and what a runner's death means for its runs.
// Over 250 lines because those steps share one PendingRun record (pending-run.ts); the decisions live
// beside it (run-limits, cpu-fairness, runner-pool, runner-crash, runner-messages, tool-forwarding, run-result).
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { availableParallelism } from 'node:os'
import { CpuFairness } from './cpu-fairness.ts'
import { cancelledError, enclaveError, timeoutError } from '../common/errors.ts'
import { isSecurityLevel } from './levels.ts'
import type { DoneMessage, LogMessage, RunLimits, ToMain } from '../protocol/messages.ts'
import { decodeDone, failure, parseLogs } from './run-result.ts'
import { checkRunRequest } from './run-limits.ts'
import { detectProtections, type RunnerProtections } from './runner-launch.ts'
import { crashOutcomes } from './runner-crash.ts'
import { RunnerPool, runnerPoolOptions, type Runner as PoolRunner } from './runner-pool.ts'
import { checkRunnerMessage } from './runner-messages.ts'
import { onRefusedCall, onToolCall } from './tool-forwarding.ts'
import { MAX_DRAWN_CHARS, newPendingRun, reportDrawn, reportEvent, type PendingRun } from './pending-run.ts'
import type {
  EnclaveLogger, EnclaveOptions, EnclaveStats, ExecutionError, ExecutionResult, RunEvent, RunOptions, RunnerExitInfo,
  SecurityLevel, ToolHandler
} from '../common/types.ts'

type Runner = PoolRunner<PendingRun>

/** How long a runner whose isolate would not stop may finish its other runs before it is killed. */
const STUCK_RUNNER_GRACE_MS = 1000
// The reason every ended run's tool signal carries. Made once: abort() without a reason builds a
// DOMException, stack trace included, on every run's path (about 2% of the main thread's busy time
// in a --cpu-prof of bench:http --real at 1 connection).
const RUN_ENDED = Object.freeze(new Error('The run ended'))

/**
 * Runs untrusted JavaScript in isolated-vm isolates that live in supervised runner processes.
 * `run()` never throws for script failures: every outcome is an ExecutionResult.
 * Events: 'run' (RunEvent), 'runnerReady' ({ runner, pid, startMs }).
 */
export class Enclave extends EventEmitter {
  readonly securityLevel: SecurityLevel
  readonly protections: RunnerProtections
  private readonly toolHandler: ToolHandler | undefined
  private readonly logger: EnclaveLogger | undefined
  private readonly onRunnerExit: ((info: RunnerExitInfo) => void) | undefined
  private readonly pool: RunnerPool<PendingRun>
  private readonly fairness: CpuFairness
  private executions = 0
  private inFlight = 0
  /** Runs not yet complete, by executionId, so cancel() can find them. */
  private readonly byExecution = new Map<string, PendingRun>()
  private wireSeq = 0
  private disposed = false

  constructor (options: EnclaveOptions = {}) {
    super()
    const level = options.securityLevel ?? 'STRICT'
    if (!isSecurityLevel(level)) throw new TypeError(`Unknown security level: ${String(level)}`)
    this.securityLevel = level
    this.toolHandler = options.toolHandler
    this.logger = options.logger
    this.onRunnerExit = options.onRunnerExit
    this.fairness = new CpuFairness(options.cpuCores ?? availableParallelism())
    this.protections = detectProtections()
    this.pool = new RunnerPool<PendingRun>(runnerPoolOptions(options, this.protections), {
      message: (runner, msg) => this.onMessage(runner, msg),
      exit: (runner, code, signal, reason) => this.onExit(runner, code, signal, reason),
      ready: (runner) => {
        for (const run of runner.inFlight.values()) if (run.backstop === undefined) this.armBackstop(run)
        this.emit('runnerReady', { runner: runner.index, pid: runner.pid, startMs: (runner.readyAt ?? 0) - runner.spawnedAt })
      }
    })
  }

  /** Resolves once every runner has started (or after timeoutMs). */
  async ready (timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.disposed && Date.now() < deadline && !this.pool.allReady()) await new Promise((resolve) => setTimeout(resolve, 10))
    return this.pool.allReady()
  }

  async run (code: string, options: RunOptions = {}): Promise<ExecutionResult> {
    const started = performance.now()
    const executionId = typeof options.executionId === 'string' && options.executionId !== '' ? options.executionId : randomUUID()
    const refuse = (error: ExecutionError): ExecutionResult => {
      options.onSettled?.()
      return failure(executionId, started, error)
    }
    if (this.disposed) return refuse(enclaveError('INTERNAL_ERROR', 'The enclave has been disposed'))
    const request = checkRunRequest(this.securityLevel, code, options)
    if (!request.ok) return refuse(request.error)
    let admitted: PendingRun | undefined
    try {
      return await new Promise<ExecutionResult>((resolve) => {
        admitted = this.admit(code, executionId, started, request.key, request.limits, options, resolve)
      })
    } catch (err) {
      this.logger?.error({ err, executionId }, 'enclave run failed')
      const result = failure(executionId, started, enclaveError('INTERNAL_ERROR', 'The enclave failed to run the code'))
      if (admitted !== undefined) this.complete(admitted, result)
      else options.onSettled?.()
      return result
    }
  }

  private admit (
    code: string, executionId: string, started: number, key: string | undefined, limits: RunLimits, options: RunOptions,
    resolve: (result: ExecutionResult) => void
  ): PendingRun {
    const run = newPendingRun(String(++this.wireSeq), code, executionId, started, key, limits, options, this.fairness.newRun(key ?? ''), resolve)
    this.inFlight++
    this.byExecution.set(executionId, run)
    // A run that waits for a CPU lane past its deadline ends TIMEOUT without having run.
    const waitLimit = setTimeout(() => {
      if (run.fair.admitted || run.done) return
      this.fairness.withdraw(run.fair)
      this.complete(run, failure(executionId, started, timeoutError(limits.timeoutMs, ' (waiting for a free CPU lane)')))
    }, limits.timeoutMs)
    waitLimit.unref()
    this.fairness.admit(run.fair, () => { clearTimeout(waitLimit); this.dispatch(run) })
    return run
  }

  /**
   * Ends a run at once with CANCELLED, as a timeout would: its isolate is disposed (also while it
   * awaits a tool), its tool calls' `runEnded` signal is aborted, and its slot is settled once the
   * isolate has stopped. False when no such run is in progress here.
   */
  cancel (executionId: string): boolean {
    const run = this.byExecution.get(executionId)
    if (run === undefined || run.done) return false
    // In-flight tool calls (an HTTP request, a query) stop now, not when the isolate has.
    run.ended.abort(RUN_ENDED)
    if (!run.fair.admitted) {
      this.fairness.withdraw(run.fair)
      this.complete(run, failure(run.executionId, run.started, cancelledError(), run.toolCalls))
      return true
    }
    if (run.runner === undefined) {
      this.complete(run, failure(run.executionId, run.started, cancelledError(), run.toolCalls))
      return true
    }
    // The runner ends it and answers with its done message (CANCELLED, with the logs so far).
    run.cancelled = true
    run.runner.send({ t: 'cancel', id: run.wireId })
    return true
  }

  stats (): EnclaveStats {
    const alive = this.pool.all
    return {
      runners: alive.length,
      runnersReady: alive.filter((r) => r.ready).length,
      runnerRestarts: this.pool.restarts,
      inFlight: this.inFlight,
      executions: this.executions
    }
  }

  /** A bare round trip to runner `index` (a ping its event loop answers) in ms: a tool call's floor. */
  async pingRunner (index = 0): Promise<number> {
    const runner = this.pool.normal[index]
    if (runner?.ready !== true) throw new Error(`Runner ${index} is not ready`)
    return await runner.ping()
  }

  /** Pids of the live runner processes, by index (for supervision tests and diagnostics). */
  runnerPids (): Array<number | undefined> {
    return this.pool.normal.map((r) => r === undefined || r.exited ? undefined : r.runnerPid ?? r.pid)
  }

  async dispose (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    for (const runner of this.pool.all) {
      for (const run of [...runner.inFlight.values()]) this.complete(run, failure(run.executionId, run.started, enclaveError('INTERNAL_ERROR', 'The enclave was disposed')))
    }
    await this.pool.dispose()
  }

  private dispatch (run: PendingRun): void {
    if (run.done) return
    const waitedMs = Math.round(performance.now() - run.started)
    if (waitedMs >= run.limits.timeoutMs) { this.complete(run, failure(run.executionId, run.started, timeoutError(run.limits.timeoutMs))); return }
    const runner = this.pool.place(run.key, this.pool.isQuarantined(run.key) || run.retryApart)
    if (runner === undefined) { this.complete(run, failure(run.executionId, run.started, enclaveError('INTERNAL_ERROR', 'No sandbox runner is available'))); return }
    run.attempts++
    run.runner = runner
    run.rssAtStartBytes = runner.rssBytes()
    runner.inFlight.set(run.wireId, run)
    if (runner.ready) this.armBackstop(run)
    runner.send({ t: 'run', id: run.wireId, code: run.code, key: run.key, o: { ...run.limits, waitedMs }, ...(run.onEvent !== undefined ? { ev: true } : {}), ...(run.replay !== undefined ? { rp: run.replay } : {}), ...(run.onDrawn !== undefined ? { rec: MAX_DRAWN_CHARS } : {}) })
  }

  // The runner enforces the timeout; this catches a runner that stopped answering at all.
  private armBackstop (run: PendingRun): void {
    const grace = 2000 + run.limits.timeoutMs * 0.1
    run.backstop = setTimeout(() => {
      if (run.done || run.runner === undefined) return
      this.complete(run, failure(run.executionId, run.started, timeoutError(run.limits.timeoutMs)))
      this.pool.retire(run.runner, 'stopped answering', 0)
    }, Math.max(0, run.deadline - performance.now()) + grace)
    run.backstop.unref()
  }

  private onMessage (runner: Runner, msg: ToMain): void {
    const problem = checkRunnerMessage(runner, msg)
    if (problem !== null) { this.pool.violation(runner, problem); return }
    switch (msg.t) {
      case 'call': onToolCall(runner.inFlight.get(msg.id)!, msg, this.toolHandler, this.logger); return
      case 'done': this.onDone(runner, runner.inFlight.get(msg.id)!, msg); return
      case 'log': this.onLog(runner.inFlight.get(msg.id)!, msg); return
      case 'refused': onRefusedCall(runner.inFlight.get(msg.id)!, msg, this.logger); return
      case 'cpu':
        for (const [id, cpuMs] of msg.s) {
          const run = runner.inFlight.get(id) ?? runner.draining.get(id)
          if (run !== undefined) this.fairness.sample(run.fair, cpuMs)
        }
        return
      case 'pong': runner.onPong(msg.n); return
      case 'freed': {
        const run = runner.draining.get(msg.id)!
        runner.draining.delete(msg.id)
        this.settle(run)
        return
      }
      case 'stuck': {
        // Its tenant runs apart from now on, so a repeat costs only quarantined tenants a runner.
        const run = runner.draining.get(msg.id)!
        this.pool.quarantine(run.key)
        this.pool.retire(runner, `execution ${run.executionId} did not stop after it ended`, STUCK_RUNNER_GRACE_MS)
      }
    }
  }

  private onLog (run: PendingRun, msg: LogMessage): void {
    for (const entry of parseLogs([msg.l])) reportEvent(run, { type: 'log', level: entry.level, message: entry.message }, this.logger)
  }

  private onDone (runner: Runner, run: PendingRun, msg: DoneMessage): void {
    if (msg.busy === true) runner.draining.set(run.wireId, run)
    if (!run.done) reportDrawn(run, msg.r, this.logger)
    this.complete(run, decodeDone(run.executionId, run.started, msg), msg.iso, msg.reused === true, msg.busy === true)
  }

  private complete (run: PendingRun, result: ExecutionResult, isolateId?: string, reused = false, busy = false): void {
    if (run.done) return
    run.done = true
    run.ended.abort(RUN_ENDED)
    if (this.byExecution.get(run.executionId) === run) this.byExecution.delete(run.executionId)
    clearTimeout(run.backstop)
    const runner = run.runner
    runner?.inFlight.delete(run.wireId)
    this.inFlight--
    this.executions++
    if (this.listenerCount('run') > 0) {
      const event: RunEvent = { executionId: run.executionId, isolateKey: run.key, runner: runner?.index ?? -1, isolateId, reusedIsolate: reused, result }
      this.emit('run', event)
    }
    run.resolve(result)
    if (!busy) this.settle(run)
    if (runner !== undefined) this.pool.drained(runner)
  }

  /** The run's CPU is really free: its fairness lane and the caller's slot can go. */
  private settle (run: PendingRun): void {
    if (run.settled) return
    run.settled = true
    this.fairness.release(run.fair)
    try { run.onSettled?.() } catch (err) { this.logger?.error({ err }, 'onSettled failed') }
  }

  private onExit (runner: Runner, code: number | null, signal: string | null, reason: string | undefined): void {
    const outcomes = crashOutcomes(runner, reason, performance.now())
    for (const outcome of outcomes) {
      const { run } = outcome
      if (outcome.fate === 'blamed') this.pool.quarantine(run.key)
      if (outcome.fate === 'retry' && run.cancelled) {
        this.complete(run, failure(run.executionId, run.started, cancelledError(), run.toolCalls))
      } else if (outcome.fate === 'retry' && !this.disposed) {
        runner.inFlight.delete(run.wireId)
        clearTimeout(run.backstop)
        run.callIds.clear()
        run.retryApart = outcome.quarantine
        this.dispatch(run)
      } else {
        this.complete(run, failure(run.executionId, run.started, outcome.fate === 'retry' ? enclaveError('INTERNAL_ERROR', 'The enclave was disposed') : outcome.error, run.toolCalls))
      }
    }
    for (const run of runner.draining.values()) this.settle(run)
    runner.draining.clear()
    const info: RunnerExitInfo = { runner: runner.index, pid: runner.runnerPid ?? runner.pid, code, signal, inFlight: outcomes.length, outOfMemory: runner.outOfMemory }
    if (this.disposed) return
    try { this.onRunnerExit?.(info) } catch (err) { this.logger?.error({ err }, 'onRunnerExit failed') }
  }
}
