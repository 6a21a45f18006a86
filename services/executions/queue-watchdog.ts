// A watchdog for a queue worker that is connected and registered but takes nothing. After a Redis
// failover (Cluster or Sentinel) a BullMQ Worker can stay so for good: the promoted replica lacks
// the queue's last writes (jobs already taken show as waiting again, a job that waited for its
// tenant's slot as due in the delayed set, the marker its blocking read waits on may be gone), and
// its blocking connection can hang on without an error. BullMQ's maintainers suggest closing and recreating such a
// worker (taskforcesh/bullmq#3185, #3088); this notices when to, and does it, bounded.

export interface WatchdogLog {
  warn: (obj: Record<string, unknown>, msg: string) => void
}

export interface QueueWatchdogOptions {
  /** How often the worker is looked at. */
  checkEveryMs: number
  /** An idle worker that has taken nothing for this long while jobs wait is stuck. */
  stuckAfterMs: number
  /** After a recreation that took nothing, the next waits twice as long, up to this. */
  maxBackoffMs: number
  /**
   * Whether the worker runs no job now: only then is it recreated, since closing it at once loses
   * none (a worker closed gracefully waits for its blocking read, which may be what hangs).
   */
  idle: () => boolean
  /** When the worker last took a job (0: never). */
  lastTakenAt: () => number
  /** Whether jobs wait that a worker could take now: waiting, or delayed ones that are due. */
  pending: () => Promise<boolean>
  /** Closes the worker and makes a new one (with a new blocking connection). */
  recreate: () => void
  log: WatchdogLog
  now?: () => number
}

export interface QueueWatchdog {
  stop: () => void
  /** Recreations so far (tests and logs). */
  readonly recreations: number
}

export function startQueueWatchdog (opts: QueueWatchdogOptions): QueueWatchdog {
  const now = opts.now ?? Date.now
  let stuckAfter = opts.stuckAfterMs
  let recreations = 0
  const startedAt = now()
  let lastRecreatedAt = 0
  let checking = false
  const check = async (): Promise<void> => {
    const taken = opts.lastTakenAt()
    // A job taken since the last recreation: the worker works, the wait is back to its start.
    if (taken >= lastRecreatedAt) stuckAfter = opts.stuckAfterMs
    const idleFor = now() - Math.max(taken, lastRecreatedAt, startedAt)
    if (idleFor < stuckAfter || !opts.idle()) return
    // Redis unreachable: nothing waits that the worker could take; the check tries later.
    if (!await opts.pending().catch(() => false)) return
    recreations++
    opts.log.warn({ idleMs: idleFor, recreations, nextCheckAfterMs: Math.min(stuckAfter * 2, opts.maxBackoffMs) },
      'the execution queue worker took no job while jobs were waiting; recreating it and its blocking connection')
    lastRecreatedAt = now()
    // Bounded: a recreation that does not help is not repeated at once, but after twice as long.
    stuckAfter = Math.min(stuckAfter * 2, opts.maxBackoffMs)
    opts.recreate()
  }
  const timer = setInterval(() => {
    if (checking) return
    checking = true
    check().finally(() => { checking = false })
  }, opts.checkEveryMs)
  timer.unref()
  return {
    stop: () => { clearInterval(timer) },
    get recreations () { return recreations }
  }
}
