import { availableParallelism } from 'node:os'

interface TenantLane {
  running: number
  waiting: Array<() => void>
  /** Moving average of cpuTime / wall time over the tenant's recent runs (0 = waits on I/O, 1 = busy CPU). */
  cpuShare: number
}

export interface CpuFairSchedulerOptions {
  /** CPU cores the isolates share; default: this machine's. */
  cores?: number
  /** cpuShare above which a tenant counts as CPU-bound. */
  cpuBoundShare?: number
}

const SMOOTHING = 0.3

/**
 * Keeps one tenant's CPU-bound scripts from taking every core. A tenant whose recent runs kept
 * the CPU busy may have at most cores − 1 runs executing at once (at least 1); its further runs
 * wait their turn, in order, so the remaining core stays free for everyone else. Tenants whose
 * scripts mostly wait on tools are not held back: waiting costs no CPU.
 * Time spent waiting counts against the run's own timeout.
 */
export class CpuFairScheduler {
  private readonly lanes = new Map<string, TenantLane>()
  private readonly cpuBoundCap: number
  private readonly cpuBoundShare: number

  constructor (options: CpuFairSchedulerOptions = {}) {
    const cores = options.cores ?? availableParallelism()
    this.cpuBoundCap = Math.max(1, cores - 1)
    this.cpuBoundShare = options.cpuBoundShare ?? 0.5
  }

  /**
   * Runs `start` when the tenant may; `start` gets the time left of `timeoutMs`, or is skipped for
   * `onExpired` when the wait used it all. `measure` reads the run's CPU share from its result.
   */
  async run<T> (
    tenantId: string,
    timeoutMs: number,
    start: (remainingMs: number) => Promise<T>,
    onExpired: () => T,
    measure: (result: T) => { cpuTime?: number, duration: number }
  ): Promise<T> {
    const lane = this.lane(tenantId)
    const queuedAt = performance.now()
    if (lane.waiting.length > 0 || lane.running >= this.capOf(lane)) {
      // The slot is handed over by release(), which counts this run as running.
      await new Promise<void>((resolve) => lane.waiting.push(resolve))
    } else {
      lane.running++
    }
    try {
      const remaining = timeoutMs - (performance.now() - queuedAt)
      if (remaining < 1) return onExpired()
      const result = await start(Math.floor(remaining))
      const { cpuTime, duration } = measure(result)
      if (cpuTime !== undefined && duration > 0) {
        lane.cpuShare = (1 - SMOOTHING) * lane.cpuShare + SMOOTHING * Math.min(1, cpuTime / duration)
      }
      return result
    } finally {
      this.release(tenantId, lane)
    }
  }

  /** Tenants with runs executing or waiting (for tests and metrics). */
  snapshot (tenantId: string): { running: number, waiting: number, cpuShare: number } | undefined {
    const lane = this.lanes.get(tenantId)
    return lane === undefined ? undefined : { running: lane.running, waiting: lane.waiting.length, cpuShare: lane.cpuShare }
  }

  private lane (tenantId: string): TenantLane {
    let lane = this.lanes.get(tenantId)
    if (lane === undefined) {
      lane = { running: 0, waiting: [], cpuShare: 0 }
      this.lanes.set(tenantId, lane)
    }
    return lane
  }

  private capOf (lane: TenantLane): number {
    return lane.cpuShare >= this.cpuBoundShare ? this.cpuBoundCap : Number.POSITIVE_INFINITY
  }

  private release (tenantId: string, lane: TenantLane): void {
    lane.running--
    while (lane.waiting.length > 0 && lane.running < this.capOf(lane)) {
      lane.running++
      ;(lane.waiting.shift() as () => void)()
    }
    // A lane is forgotten once idle and cool, so a CPU-bound tenant cannot reset it by pausing.
    if (lane.running === 0 && lane.waiting.length === 0 && lane.cpuShare < 0.05) this.lanes.delete(tenantId)
  }
}
