// Runner supervision and placement: how many runners, which one a run goes to, replacing the
// ones that die or misbehave, and the memory watch that stops a runner before the host suffers.
//
// Placement partitions tenants over runners by a hash of the isolate key (the tenant): all of a
// tenant's runs go to its home runner, spilling to the least loaded one only when home is far
// busier. A runner that dies then takes down only the runs of the tenants homed on it (about
// 1/N of them) instead of a slice of everyone's, and warm isolates stay where their tenant runs.
// A tenant whose script took a runner down is quarantined for a while: its runs go to a runner of
// their own, so a repeat touches only quarantined tenants.
import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import type { PoolConfig, ToMain } from '../protocol/messages.ts'
import type { RunnerProtections } from './runner-launch.ts'
import { RunnerProcess } from './runner-process.ts'
import type { EnclaveLogger, EnclaveOptions } from '../common/types.ts'

const READY_TIMEOUT_MS = 30_000
const MAX_STDERR_LINES = 50
/** Home keeps a run unless it has this many more in flight than the least loaded runner. */
const SPILL_AFTER = 4
const MB = 1024 * 1024

export interface PoolRun { limits: { memoryLimitMB: number, maxOutputBytes: number, maxConsoleBytes: number, maxToolArgsBytes: number } }
export type Runner<Run extends PoolRun> = RunnerProcess<Run>

export interface RunnerPoolOptions {
  count: number
  config: PoolConfig
  protections: RunnerProtections
  logger: EnclaveLogger | undefined
  quarantineMs: number
  /** Resident memory a runner may use beyond its runs' limits (code, idle isolates). */
  baseMemoryMB: number
  /** Resident memory per MB of its runs' limits (isolated-vm's heap limit is soft). */
  memoryFactor: number
  watchIntervalMs: number
}

/** The pool an enclave's options ask for, with the defaults filled in. */
export function runnerPoolOptions (options: EnclaveOptions, protections: RunnerProtections): RunnerPoolOptions {
  return {
    count: options.runners === undefined || options.runners <= 0 ? availableParallelism() : Math.floor(options.runners),
    config: {
      maxIdlePerKey: options.maxIdleIsolatesPerKey ?? 8,
      maxIdle: options.maxIdleIsolates ?? 32,
      idleTtlMs: options.idleIsolateTtlMs ?? 60_000,
      maxRunsPerIsolate: options.maxRunsPerIsolate ?? 1000
    },
    protections,
    logger: options.logger,
    quarantineMs: options.quarantineMs ?? 10 * 60_000,
    baseMemoryMB: options.runnerBaseMemoryMB ?? 256,
    memoryFactor: 2,
    watchIntervalMs: options.memoryWatchIntervalMs ?? 100
  }
}

export interface RunnerPoolEvents<Run extends PoolRun> {
  message: (runner: Runner<Run>, msg: ToMain) => void
  /** The runner is gone; its runs must be ended or moved (the pool has started a replacement). */
  exit: (runner: Runner<Run>, code: number | null, signal: string | null, reason: string | undefined) => void
  ready: (runner: Runner<Run>) => void
}

export class RunnerPool<Run extends PoolRun> {
  restarts = 0
  private readonly runners: Array<Runner<Run> | undefined>
  private readonly failedStarts: number[]
  private readonly quarantined = new Map<string, number>()
  /** Why a runner was stopped by us, for its exit report. */
  private readonly stopReasons = new WeakMap<Runner<Run>, string>()
  private readonly watch: NodeJS.Timeout
  private stderrLines = 0
  private disposed = false
  private readonly options: RunnerPoolOptions
  private readonly events: RunnerPoolEvents<Run>

  constructor (options: RunnerPoolOptions, events: RunnerPoolEvents<Run>) {
    this.options = options
    this.events = events
    // Index `count` is the quarantine runner, started the first time it is needed.
    this.runners = new Array<Runner<Run> | undefined>(options.count + 1).fill(undefined)
    this.failedStarts = new Array<number>(options.count + 1).fill(0)
    for (let i = 0; i < options.count; i++) this.spawn(i)
    this.watch = setInterval(() => this.watchMemory(), options.watchIntervalMs)
    this.watch.unref()
  }

  get all (): Array<Runner<Run>> {
    return this.runners.filter((r): r is Runner<Run> => r !== undefined && !r.exited)
  }

  /** The normal runners (not the quarantine one), by index, for tests and diagnostics. */
  get normal (): Array<Runner<Run> | undefined> {
    return this.runners.slice(0, this.options.count)
  }

  allReady (): boolean {
    return this.normal.every((r) => r?.ready === true)
  }

  isQuarantined (key: string | undefined): boolean {
    if (key === undefined) return false
    const until = this.quarantined.get(key)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.quarantined.delete(key)
    return false
  }

  quarantine (key: string | undefined): void {
    if (key === undefined) return
    this.quarantined.set(key, Date.now() + this.options.quarantineMs)
    this.options.logger?.warn({ isolateKey: key, quarantineMs: this.options.quarantineMs }, 'enclave: tenant quarantined after its script stopped (or stuck) a runner')
  }

  /** The runner for a run of `key`: its home (or a spill), or the quarantine runner. */
  place (key: string | undefined, quarantine: boolean): Runner<Run> | undefined {
    if (quarantine) {
      const index = this.options.count
      let runner = this.runners[index]
      if (runner === undefined || runner.exited || runner.retired) runner = this.spawn(index)
      return runner
    }
    let least: Runner<Run> | undefined
    let leastScore = Infinity
    for (const r of this.normal) {
      if (r === undefined || r.exited || r.retired) continue
      const score = r.inFlight.size + (r.ready ? 0 : 1000)
      if (score < leastScore) { least = r; leastScore = score }
    }
    if (key === undefined || least === undefined) return least
    const home = this.runners[homeIndex(key, this.options.count)]
    if (home === undefined || home.exited || home.retired) return least
    const homeScore = home.inFlight.size + (home.ready ? 0 : 1000)
    return homeScore <= leastScore + SPILL_AFTER ? home : least
  }

  /**
   * Takes a runner out of service now: a replacement starts at once, and the old one is killed
   * when its runs are done or after `graceMs`, whichever comes first.
   */
  retire (runner: Runner<Run>, reason: string, graceMs: number): void {
    if (runner.retired || runner.exited) return
    runner.retired = true
    this.stopReasons.set(runner, reason)
    this.options.logger?.error({ runner: runner.index, pid: runner.runnerPid ?? runner.pid, reason }, 'enclave runner taken out of service')
    if (!this.disposed && this.runners[runner.index] === runner) {
      this.restarts++
      this.spawn(runner.index)
    }
    if (graceMs <= 0 || runner.inFlight.size === 0) { runner.kill('SIGKILL'); return }
    const deadline = setTimeout(() => runner.kill('SIGKILL'), graceMs)
    deadline.unref()
  }

  /** A retired runner whose last run just ended is not kept waiting for its grace period. */
  drained (runner: Runner<Run>): void {
    if (runner.retired && runner.inFlight.size === 0) runner.kill('SIGKILL')
  }

  async dispose (): Promise<void> {
    this.disposed = true
    clearInterval(this.watch)
    await Promise.all(this.runners.map(async (r) => await r?.stop()))
  }

  // A runner may hold at most its base plus a factor of its runs' memory limits.
  private watchMemory (): void {
    for (const runner of this.all) {
      // Only runs make a runner grow; an idle one holds at most its pool of idle isolates.
      if (runner.retired || (runner.inFlight.size === 0 && runner.draining.size === 0)) continue
      const rss = runner.rssBytes()
      if (rss === undefined) continue
      let limits = 0
      for (const run of runner.inFlight.values()) limits += run.limits.memoryLimitMB
      for (const run of runner.draining.values()) limits += run.limits.memoryLimitMB
      const budget = (this.options.baseMemoryMB + this.options.memoryFactor * limits) * MB
      if (rss > budget) this.retire(runner, `resident memory ${Math.round(rss / MB)} MB over its budget of ${Math.round(budget / MB)} MB`, 0)
    }
  }

  // What one message from a runner may take while it arrives: its runs' output and arguments,
  // JSON-escaped (at most 6 characters per byte), plus room for logs framing.
  private maxLine (runner: Runner<Run>): number {
    let most = 0
    for (const run of runner.inFlight.values()) {
      most = Math.max(most, run.limits.maxOutputBytes + run.limits.maxConsoleBytes, run.limits.maxToolArgsBytes)
    }
    return 6 * most + MB
  }

  private spawn (index: number): Runner<Run> {
    const runner: Runner<Run> = new RunnerProcess<Run>(index, this.options.config, this.options.protections, () => this.maxLine(runner), {
      message: (r, msg) => {
        if (msg.t === 'ready') { this.failedStarts[r.index] = 0; this.events.ready(r) }
        this.events.message(r, msg)
      },
      exit: (r, code, signal) => this.onExit(r, code, signal),
      stderr: (r, line) => {
        if (this.stderrLines++ < MAX_STDERR_LINES) this.options.logger?.warn({ runner: r.index, pid: r.pid, line: line.slice(0, 1000) }, 'enclave runner output')
      },
      violation: (r, reason) => this.violation(r, reason)
    })
    this.runners[index] = runner
    const startTimer = setTimeout(() => {
      if (!runner.ready && !runner.exited) this.retire(runner, 'did not start in time', 0)
    }, READY_TIMEOUT_MS)
    startTimer.unref()
    return runner
  }

  /** A runner that breaks the protocol is treated as compromised: killed, logged, replaced. */
  violation (runner: Runner<Run>, reason: string): void {
    this.retire(runner, `protocol violation: ${reason}`, 0)
  }

  private onExit (runner: Runner<Run>, code: number | null, signal: string | null): void {
    this.events.exit(runner, code, signal, this.stopReasons.get(runner))
    if (this.disposed || this.runners[runner.index] !== runner) return
    this.options.logger?.warn({ runner: runner.index, pid: runner.pid, code, signal }, 'enclave runner exited; replacing it')
    // A runner that dies before it is ready is retried with backoff, not in a hot loop.
    const failures = runner.readyAt === undefined ? ++this.failedStarts[runner.index] : 0
    const delay = failures === 0 ? 0 : Math.min(5000, 100 * 2 ** (failures - 1))
    if (failures >= 3) this.options.logger?.error({ runner: runner.index, failures }, 'enclave runner keeps failing to start')
    this.restarts++
    if (runner.index === this.options.count) { this.runners[runner.index] = undefined; return } // quarantine: on demand
    if (delay === 0) this.spawn(runner.index)
    else setTimeout(() => { if (!this.disposed) this.spawn(runner.index) }, delay).unref()
  }
}

function homeIndex (key: string, count: number): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % count
}
