import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { availableParallelism } from 'node:os'
import { enclaveError } from './errors.ts'
import type { PoolConfig } from './isolate-pool.ts'
import { BOUNDS, COMMON_DEFAULTS, LEVELS, isSecurityLevel } from './levels.ts'
import type { DoneMessage, RunLimits, ToMain } from './protocol.ts'
import { RunnerProcess } from './runner-process.ts'
import { parseToolArgs, toolFailure, toolResultJson } from './tool-bridge.ts'
import type {
  EnclaveLogger, EnclaveOptions, EnclaveStats, ExecutionError, ExecutionResult, LogEntry, LogLevel,
  RunEvent, RunOptions, RunnerExitInfo, SecurityLevel, ToolHandler
} from './types.ts'

interface PendingRun {
  wireId: string
  executionId: string
  key: string | undefined
  context: unknown
  limits: RunLimits
  started: number
  runner: RunnerProcess<PendingRun>
  resolve: (result: ExecutionResult) => void
  backstop: NodeJS.Timeout | undefined
  done: boolean
}

type Runner = RunnerProcess<PendingRun>

const LOG_LEVELS = new Set<LogLevel>(['log', 'info', 'warn', 'error', 'debug'])
const READY_TIMEOUT_MS = 30_000
const MAX_AFFINITY_KEYS = 10_000
const MAX_STDERR_LINES = 50

/**
 * Runs untrusted JavaScript in isolated-vm isolates that live in supervised runner processes.
 * `run()` never throws for script failures: every outcome is an ExecutionResult.
 *
 * Events: 'run' (RunEvent), 'runnerExit' (RunnerExitInfo), 'runnerReady' ({ runner, pid, startMs }).
 */
export class Enclave extends EventEmitter {
  readonly securityLevel: SecurityLevel
  private readonly toolHandler: ToolHandler | undefined
  private readonly logger: EnclaveLogger | undefined
  private readonly onRunnerExit: ((info: RunnerExitInfo) => void) | undefined
  private readonly defaults: RunOptions
  private readonly poolConfig: PoolConfig
  private readonly runners: Array<Runner | undefined>
  private readonly failedStarts: number[]
  private readonly affinity = new Map<string, number>()
  private restarts = 0
  private executions = 0
  private inFlight = 0
  private wireSeq = 0
  private disposed = false
  private stderrLines = 0

  constructor (options: EnclaveOptions = {}) {
    super()
    const level = options.securityLevel ?? 'STRICT'
    if (!isSecurityLevel(level)) throw new TypeError(`Unknown security level: ${String(level)}`)
    this.securityLevel = level
    this.toolHandler = options.toolHandler
    this.logger = options.logger
    this.onRunnerExit = options.onRunnerExit
    this.defaults = options.defaults ?? {}
    this.poolConfig = {
      maxIdlePerKey: options.maxIdleIsolatesPerKey ?? 8,
      maxIdle: options.maxIdleIsolates ?? 32,
      idleTtlMs: options.idleIsolateTtlMs ?? 60_000,
      maxRunsPerIsolate: options.maxRunsPerIsolate ?? 1000
    }
    const count = options.runners === undefined || options.runners <= 0 ? availableParallelism() : Math.floor(options.runners)
    this.runners = new Array<Runner | undefined>(count).fill(undefined)
    this.failedStarts = new Array<number>(count).fill(0)
    for (let i = 0; i < count; i++) this.spawn(i)
  }

  /** Resolves once every runner has started (or after timeoutMs). */
  async ready (timeoutMs = READY_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.disposed && Date.now() < deadline) {
      if (this.runners.every((r) => r?.ready === true)) return true
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return this.runners.every((r) => r?.ready === true)
  }

  async run (code: string, options: RunOptions = {}): Promise<ExecutionResult> {
    const started = performance.now()
    const executionId = typeof options.executionId === 'string' && options.executionId !== '' ? options.executionId : randomUUID()
    const refuse = (error: ExecutionError): ExecutionResult => failure(executionId, started, error)
    try {
      if (this.disposed) return refuse(enclaveError('INTERNAL_ERROR', 'The enclave has been disposed'))
      if (typeof code !== 'string') return refuse(enclaveError('VALIDATION_ERROR', 'Code must be a string'))
      const limits = this.limits(options)
      if (typeof limits === 'string') return refuse(enclaveError('VALIDATION_ERROR', limits))
      const maxCode = clampOption(options.maxCodeBytes ?? this.defaults.maxCodeBytes, COMMON_DEFAULTS.maxCodeBytes, BOUNDS.maxCodeBytes)
      if (typeof maxCode === 'string') return refuse(enclaveError('VALIDATION_ERROR', `Invalid maxCodeBytes: ${maxCode}`))
      if (code.length > maxCode || (code.length * 3 > maxCode && Buffer.byteLength(code) > maxCode)) {
        return refuse(enclaveError('VALIDATION_ERROR', `Code is ${Buffer.byteLength(code)} bytes, over the limit of ${maxCode} bytes`))
      }
      const key = options.isolateKey
      if (key !== undefined && typeof key !== 'string') return refuse(enclaveError('VALIDATION_ERROR', 'isolateKey must be a string'))
      const runner = this.pick(key)
      if (runner === undefined) return refuse(enclaveError('INTERNAL_ERROR', 'No sandbox runner is available'))
      return await new Promise<ExecutionResult>((resolve) => {
        const run: PendingRun = {
          wireId: String(++this.wireSeq),
          executionId,
          key,
          context: options.context,
          limits,
          started,
          runner,
          resolve,
          backstop: undefined,
          done: false
        }
        runner.inFlight.set(run.wireId, run)
        this.inFlight++
        if (runner.ready) this.armBackstop(run)
        runner.send({ t: 'run', id: run.wireId, code, key, o: limits })
      })
    } catch (err) {
      this.logger?.error({ err, executionId }, 'enclave run failed')
      return refuse(enclaveError('INTERNAL_ERROR', 'The enclave failed to run the code'))
    }
  }

  stats (): EnclaveStats {
    const alive = this.runners.filter((r) => r !== undefined && !r.exited)
    return {
      runners: alive.length,
      runnersReady: alive.filter((r) => r!.ready).length,
      runnerRestarts: this.restarts,
      inFlight: this.inFlight,
      executions: this.executions
    }
  }

  /** Pids of the live runners, by index (for supervision tests and diagnostics). */
  runnerPids (): Array<number | undefined> {
    return this.runners.map((r) => r === undefined || r.exited ? undefined : r.pid)
  }

  async dispose (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    const stopping: Array<Promise<void>> = []
    for (const runner of this.runners) {
      if (runner === undefined) continue
      for (const run of [...runner.inFlight.values()]) {
        this.complete(run, failure(run.executionId, run.started, enclaveError('INTERNAL_ERROR', 'The enclave was disposed')))
      }
      stopping.push(runner.stop())
    }
    await Promise.all(stopping)
  }

  private limits (options: RunOptions): RunLimits | string {
    const level = LEVELS[this.securityLevel]
    const pick = (name: keyof typeof BOUNDS, fallback: number): number | string => {
      const value = clampOption(options[name] ?? this.defaults[name], fallback, BOUNDS[name])
      if (typeof value === 'string') return `Invalid ${name}: ${value}`
      return name === 'timeoutMs' ? value : Math.floor(value)
    }
    const resolved = {
      timeoutMs: pick('timeoutMs', level.timeoutMs),
      memoryLimitMB: pick('memoryLimitMB', COMMON_DEFAULTS.memoryLimitMB),
      maxToolCalls: pick('maxToolCalls', level.maxToolCalls),
      maxOutputBytes: pick('maxOutputBytes', COMMON_DEFAULTS.maxOutputBytes),
      maxConsoleBytes: pick('maxConsoleBytes', level.maxConsoleBytes),
      maxToolArgsBytes: pick('maxToolArgsBytes', COMMON_DEFAULTS.maxToolArgsBytes)
    }
    for (const value of Object.values(resolved)) if (typeof value === 'string') return value
    return { ...(resolved as Record<keyof typeof resolved, number>), astCheck: level.astCheck }
  }

  /** Least-loaded ready runner; the key's previous runner if it is nearly as free (warm isolates). */
  private pick (key: string | undefined): Runner | undefined {
    let best: Runner | undefined
    let bestScore = Infinity
    for (const r of this.runners) {
      if (r === undefined || r.exited || r.retired) continue
      const score = r.inFlight.size + (r.ready ? 0 : 1000)
      if (score < bestScore) { best = r; bestScore = score }
    }
    if (best === undefined || key === undefined) return best
    const previous = this.affinity.get(key)
    const warm = previous === undefined ? undefined : this.runners[previous]
    if (warm !== undefined && !warm.exited && !warm.retired && warm.ready && warm.inFlight.size <= best.inFlight.size + 1) best = warm
    this.affinity.delete(key)
    this.affinity.set(key, best.index)
    if (this.affinity.size > MAX_AFFINITY_KEYS) this.affinity.delete(this.affinity.keys().next().value as string)
    return best
  }

  // The runner enforces the timeout; this catches a runner that stopped answering at all.
  private armBackstop (run: PendingRun): void {
    const grace = 2000 + run.limits.timeoutMs * 0.1
    run.backstop = setTimeout(() => {
      if (run.done) return
      this.logger?.error({ runner: run.runner.index, executionId: run.executionId }, 'enclave runner stopped answering; replacing it')
      this.complete(run, failure(run.executionId, run.started, enclaveError('TIMEOUT', `Execution timed out after ${run.limits.timeoutMs} ms`)))
      this.replace(run.runner)
    }, run.limits.timeoutMs + grace)
    run.backstop.unref()
  }

  private spawn (index: number): void {
    if (this.disposed) return
    const runner = new RunnerProcess<PendingRun>(index, this.poolConfig, {
      message: (r, msg) => this.onMessage(r, msg),
      exit: (r, code, signal) => this.onExit(r, code, signal),
      stderr: (r, line) => {
        if (this.stderrLines++ < MAX_STDERR_LINES) this.logger?.warn({ runner: r.index, pid: r.pid, line: line.slice(0, 1000) }, 'enclave runner output')
      }
    })
    this.runners[index] = runner
    const startTimer = setTimeout(() => {
      if (!runner.ready && !runner.exited) {
        this.logger?.error({ runner: index, pid: runner.pid }, 'enclave runner did not start in time')
        this.replace(runner)
      }
    }, READY_TIMEOUT_MS)
    startTimer.unref()
  }

  /** Kill a runner that stopped answering and start its replacement now, not at its exit. */
  private replace (runner: Runner): void {
    if (runner.retired) return
    runner.retired = true
    runner.kill('SIGKILL')
    if (this.disposed || this.runners[runner.index] !== runner) return
    this.restarts++
    this.spawn(runner.index)
  }

  private onMessage (runner: Runner, msg: ToMain): void {
    switch (msg.t) {
      case 'call': {
        const run = runner.inFlight.get(msg.id)
        if (run !== undefined && !run.done) void this.callTool(run, msg.c, msg.n, msg.a)
        return
      }
      case 'done': {
        const run = runner.inFlight.get(msg.id)
        if (run !== undefined) this.finish(run, msg)
        return
      }
      case 'ready': {
        this.failedStarts[runner.index] = 0
        for (const run of runner.inFlight.values()) if (run.backstop === undefined) this.armBackstop(run)
        this.emit('runnerReady', { runner: runner.index, pid: runner.pid, startMs: (runner.readyAt ?? 0) - runner.spawnedAt })
      }
    }
  }

  private async callTool (run: PendingRun, callId: number, name: string, argsJson: string): Promise<void> {
    let reply: { v?: string, e?: { code: string, message: string }, f?: boolean }
    try {
      const args = parseToolArgs(argsJson)
      if (this.toolHandler === undefined) throw Object.assign(new Error(`Unknown tool: ${name}`), { code: 'UNKNOWN_TOOL' })
      reply = { v: toolResultJson(await this.toolHandler(name, args, run.context)) }
    } catch (err) {
      reply = toolFailure(err)
    }
    if (run.done) return
    run.runner.send({ t: 'ret', id: run.wireId, c: callId, ...reply })
  }

  private finish (run: PendingRun, msg: DoneMessage): void {
    const stats: ExecutionResult['stats'] = { duration: elapsed(run.started), toolCallCount: msg.tc }
    if (msg.mem !== undefined) stats.memoryUsage = msg.mem
    if (msg.cpu !== undefined) stats.cpuTime = Math.round(msg.cpu * 1000) / 1000
    const result: ExecutionResult = { executionId: run.executionId, success: msg.ok, logs: parseLogs(msg.l), stats }
    if (msg.ok) {
      if (msg.v !== undefined) {
        try {
          result.value = JSON.parse(msg.v)
        } catch {
          result.success = false
          result.error = enclaveError('INTERNAL_ERROR', 'The result could not be read')
        }
      }
    } else {
      result.error = msg.e ?? enclaveError('INTERNAL_ERROR', 'The execution failed without an error')
    }
    this.complete(run, result, msg.iso, msg.reused === true)
  }

  private complete (run: PendingRun, result: ExecutionResult, isolateId?: string, reused = false): void {
    if (run.done) return
    run.done = true
    clearTimeout(run.backstop)
    run.runner.inFlight.delete(run.wireId)
    this.inFlight--
    this.executions++
    if (this.listenerCount('run') > 0) {
      const event: RunEvent = { executionId: run.executionId, isolateKey: run.key, runner: run.runner.index, isolateId, reusedIsolate: reused, result }
      this.emit('run', event)
    }
    run.resolve(result)
  }

  private onExit (runner: Runner, code: number | null, signal: string | null): void {
    const outOfMemory = runner.outOfMemory
    const inFlight = [...runner.inFlight.values()]
    for (const run of inFlight) {
      // isolated-vm names the run whose isolate it lost; otherwise out-of-memory output blames all.
      const named = runner.catastrophic.get(run.wireId)
      let error = enclaveError('INTERNAL_ERROR', 'The sandbox process stopped unexpectedly')
      if (named !== undefined ? /memory/i.test(named) : outOfMemory && runner.catastrophic.size === 0) {
        error = enclaveError('MEMORY_LIMIT_EXCEEDED', `Memory limit of ${run.limits.memoryLimitMB} MB exceeded; the sandbox process was stopped`)
      } else if (named !== undefined && /terminate/i.test(named)) {
        error = enclaveError('TIMEOUT', `Execution timed out after ${run.limits.timeoutMs} ms`)
      }
      this.complete(run, failure(run.executionId, run.started, error))
    }
    const info: RunnerExitInfo = { runner: runner.index, pid: runner.pid, code, signal, inFlight: inFlight.length, outOfMemory }
    if (this.disposed) return
    this.logger?.warn(info, 'enclave runner exited; replacing it')
    this.emit('runnerExit', info)
    try { this.onRunnerExit?.(info) } catch (err) { this.logger?.error({ err }, 'onRunnerExit failed') }
    if (this.runners[runner.index] !== runner) return
    // A runner that dies before it is ready is retried with backoff, not in a hot loop.
    const failures = runner.readyAt === undefined ? ++this.failedStarts[runner.index] : 0
    const delay = failures === 0 ? 0 : Math.min(5000, 100 * 2 ** (failures - 1))
    if (failures >= 3) this.logger?.error({ runner: runner.index, failures }, 'enclave runner keeps failing to start')
    this.restarts++
    if (delay === 0) this.spawn(runner.index)
    else setTimeout(() => this.spawn(runner.index), delay).unref()
  }
}

function clampOption (value: unknown, fallback: number, [min, max]: readonly [number, number]): number | string {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'not a finite number'
  if (value < min || value > max) return `must be between ${min} and ${max}`
  return value
}

function elapsed (started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000
}

function failure (executionId: string, started: number, error: ExecutionError): ExecutionResult {
  return { executionId, success: false, error, logs: [], stats: { duration: elapsed(started), toolCallCount: 0 } }
}

function parseLogs (chunks: string[]): LogEntry[] {
  const logs: LogEntry[] = []
  for (const chunk of chunks) {
    let entries: unknown
    try { entries = JSON.parse(chunk) } catch { continue }
    if (!Array.isArray(entries)) continue
    for (const e of entries as Array<Partial<LogEntry>>) {
      if (e !== null && typeof e === 'object' && LOG_LEVELS.has(e.level as LogLevel) && typeof e.message === 'string') {
        logs.push({ level: e.level as LogLevel, message: e.message })
      }
    }
  }
  return logs
}
