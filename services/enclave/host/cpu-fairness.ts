// Per-tenant CPU fairness from measured CPU time. Isolates run on threads that the OS shares out
// by count, so a tenant with many busy isolates would take the cores from everyone else. Each
// running execution's CPU use is sampled live (the runners report isolate CPU time every few ms);
// a key (tenant) may start another run only while the CPU its runs are using now is below its
// share of the cores. A run not yet measured counts as a whole core, so a first burst is capped
// like any other; a run waiting on a tool uses no CPU and stops counting once measured idle.
// Nothing here depends on a key's history: what counts is what its runs use now.

export interface FairRun {
  readonly key: string
  /** Cores this run is using (from its last two CPU samples); undefined until it is measured. */
  rate: number | undefined
  lastCpuMs: number
  lastAt: number
  admitted: boolean
}

interface KeyState { running: Set<FairRun>, waiting: Array<{ run: FairRun, start: () => void }> }

/**
 * A key counts as having work for this long after its last run ended: a tenant sending short
 * runs one after another is between runs most of the time, and must still find its core free.
 */
const ACTIVE_FOR_MS = 1000
const HOT = 0.5

export class CpuFairness {
  private readonly cores: number
  private readonly now: () => number
  private readonly keys = new Map<string, KeyState>()
  /** When each key last had a run end (for keys without runs now). */
  private readonly recent = new Map<string, number>()

  constructor (cores: number, now: () => number = () => performance.now()) {
    this.cores = Math.max(1, cores)
    this.now = now
  }

  newRun (key: string): FairRun {
    return { key, rate: undefined, lastCpuMs: 0, lastAt: this.now(), admitted: false }
  }

  /** Starts the run now if its key is under its share, else when it is. */
  admit (run: FairRun, start: () => void): void {
    const state = this.state(run.key)
    if (state.waiting.length === 0 && this.load(state) < this.share(run.key)) {
      this.begin(state, run)
      start()
    } else {
      state.waiting.push({ run, start })
    }
  }

  /** A waiting run gave up (its deadline passed): it will not start. */
  withdraw (run: FairRun): void {
    const state = this.keys.get(run.key)
    if (state === undefined) return
    state.waiting = state.waiting.filter((w) => w.run !== run)
    this.forget(run.key, state)
  }

  /** The run's cumulative CPU ms, as its runner measured it. */
  sample (run: FairRun, cpuMs: number): void {
    const at = this.now()
    const dt = at - run.lastAt
    if (dt <= 0) return
    run.rate = Math.max(0, (cpuMs - run.lastCpuMs) / dt)
    run.lastCpuMs = cpuMs
    run.lastAt = at
    this.pump()
  }

  /** The run no longer uses CPU (it ended and its isolate really stopped). */
  release (run: FairRun): void {
    const state = this.keys.get(run.key)
    if (state === undefined || !run.admitted) return
    state.running.delete(run)
    run.admitted = false
    this.forget(run.key, state)
    this.pump()
  }

  /** Cores a key's runs use now, and how many wait (for metrics and tests). */
  snapshot (key: string): { running: number, waiting: number, load: number } | undefined {
    const state = this.keys.get(key)
    return state === undefined ? undefined : { running: state.running.size, waiting: state.waiting.length, load: this.load(state) }
  }

  /**
   * A key's share: all cores while it is the only key with work; while another key has work (or
   * had a run end within the last second), all but one core (at least one), so that another
   * tenant always finds a core free.
   */
  private share (key: string): number {
    const now = this.now()
    for (const other of this.keys.keys()) if (other !== key) return Math.max(1, this.cores - 1)
    for (const [other, at] of this.recent) {
      if (other !== key && now - at <= ACTIVE_FOR_MS) return Math.max(1, this.cores - 1)
    }
    return this.cores
  }

  // A run busy at least half the time counts as a whole core: when runs crowd a core, each is
  // measured at a fraction of it, and that must not read as room for one more.
  private load (state: KeyState): number {
    let cores = 0
    for (const run of state.running) cores += run.rate === undefined || run.rate >= HOT ? 1 : run.rate
    return cores
  }

  private begin (state: KeyState, run: FairRun): void {
    run.admitted = true
    run.lastAt = this.now()
    state.running.add(run)
  }

  private pump (): void {
    for (const [key, state] of this.keys) {
      const share = this.share(key)
      while (state.waiting.length > 0 && this.load(state) < share) {
        const next = state.waiting.shift()!
        this.begin(state, next.run)
        next.start()
      }
    }
  }

  private state (key: string): KeyState {
    let state = this.keys.get(key)
    if (state === undefined) {
      state = { running: new Set(), waiting: [] }
      this.keys.set(key, state)
      this.pump()
    }
    return state
  }

  private forget (key: string, state: KeyState): void {
    if (state.running.size === 0 && state.waiting.length === 0) {
      this.keys.delete(key)
      // Entries older than the window say nothing any more; dropping them here keeps the map to
      // the tenants of the last second, whatever else is running.
      const now = this.now()
      for (const [other, at] of this.recent) if (now - at > ACTIVE_FOR_MS) this.recent.delete(other)
      this.recent.set(key, now)
    }
  }
}
