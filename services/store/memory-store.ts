import { EventEmitter } from 'node:events'
import { withCheckedArguments } from './checked-store.ts'
import { deliver, StoreUnavailableError, type AdmitResult, type ConsumeResult, type LimitStore, type TakeAllResult, type TakeResult } from './limit-store.ts'

interface Counter { count: number, expiresAt: number }

// Expired entries are dropped when touched; a full sweep every SWEEP_EVERY writes keeps keys that
// are never touched again (yesterday's day counters) from piling up, without a timer to clean up.
const SWEEP_EVERY = 1000

/**
 * In-process LimitStore: correct for a single instance only. Every method does its work
 * synchronously before returning, so each operation is atomic within this process.
 */
export function createMemoryStore (options: { now?: () => number } = {}): LimitStore {
  // The clock is injectable so time-based tests run on fake time instead of sleeping.
  const clock = options.now ?? Date.now
  const counters = new Map<string, Counter>()
  const leases = new Map<string, Map<string, number>>() // key → holderId → expiresAt
  const bus = new EventEmitter()
  bus.setMaxListeners(0) // one listener per subscription; no leak warning for many channels
  let closed = false
  let writes = 0

  function open (): void {
    if (closed) throw new StoreUnavailableError('Memory store is closed')
  }

  function liveCounter (key: string, now: number): Counter | undefined {
    const c = counters.get(key)
    if (c !== undefined && c.expiresAt <= now) {
      counters.delete(key)
      return undefined
    }
    return c
  }

  function liveLeases (key: string, now: number): Map<string, number> | undefined {
    const holders = leases.get(key)
    if (holders === undefined) return undefined
    for (const [holder, expiresAt] of holders) if (expiresAt <= now) holders.delete(holder)
    if (holders.size === 0) {
      leases.delete(key)
      return undefined
    }
    return holders
  }

  function wrote (now: number): void {
    if (++writes % SWEEP_EVERY !== 0) return
    for (const key of counters.keys()) liveCounter(key, now)
    for (const key of leases.keys()) liveLeases(key, now)
  }

  // Synchronous, so admit() can run it and the lease check in one step.
  function consumeNow (key: string, amount: number, limit: number, ttlMs: number): ConsumeResult {
    const now = clock()
    const c = liveCounter(key, now)
    const count = c?.count ?? 0
    if (count + amount > limit) {
      return { allowed: false, count, resetAt: c?.expiresAt ?? now + ttlMs }
    }
    if (c === undefined) {
      // Like Redis: the TTL is set when the key is created, and later consumes keep it.
      counters.set(key, { count: amount, expiresAt: now + ttlMs })
      wrote(now)
      return { allowed: true, count: amount, resetAt: now + ttlMs }
    }
    c.count += amount
    return { allowed: true, count: c.count, resetAt: c.expiresAt }
  }

  function leaseFull (key: string, holderId: string, limit: number, now: number): boolean {
    const holders = liveLeases(key, now)
    return holders?.has(holderId) !== true && (holders?.size ?? 0) >= limit
  }

  function addLease (key: string, holderId: string, leaseMs: number, now: number): void {
    const holders = liveLeases(key, now) ?? new Map<string, number>()
    holders.set(holderId, now + leaseMs)
    leases.set(key, holders)
    wrote(now)
  }

  return withCheckedArguments({
    kind: 'memory',

    async consume (key, amount, limit, ttlMs): Promise<ConsumeResult> {
      open()
      return consumeNow(key, amount, limit, ttlMs)
    },

    async consumeUpTo (key, amount, limit, ttlMs): Promise<TakeResult> {
      open()
      const now = clock()
      const c = liveCounter(key, now)
      const taken = Math.min(amount, limit - (c?.count ?? 0))
      if (taken <= 0) return { taken: 0, count: c?.count ?? 0, resetAt: c?.expiresAt ?? now + ttlMs }
      const r = consumeNow(key, taken, limit, ttlMs)
      return { taken, count: r.count, resetAt: r.resetAt }
    },

    async consumeUpToAll (list, amount, ttlMs): Promise<TakeAllResult> {
      open()
      const now = clock()
      let taken = amount
      let limitedBy = -1
      list.forEach((c, i) => {
        const left = c.limit - (liveCounter(c.key, now)?.count ?? 0)
        if (left < taken) { taken = left; limitedBy = i }
      })
      const resetOf = (key: string | undefined): number => (key === undefined ? undefined : liveCounter(key, now)?.expiresAt) ?? now + ttlMs
      if (taken <= 0) return { taken: 0, limitedBy, resetAt: resetOf(list[limitedBy]?.key) }
      for (const c of list) consumeNow(c.key, taken, c.limit, ttlMs)
      return { taken, limitedBy, resetAt: resetOf(list[Math.max(limitedBy, 0)]?.key) }
    },

    async admit (lease, list, ttlMs): Promise<AdmitResult> {
      open()
      const now = clock()
      if (leaseFull(lease.key, lease.holderId, lease.limit, now)) return { outcome: 'lease-refused', count: 0, resetAt: now + ttlMs }
      for (const [i, c] of list.entries()) {
        const counter = liveCounter(c.key, now)
        const count = counter?.count ?? 0
        if (count + Math.max(c.take, 1) > c.limit) return { outcome: 'counter-refused', count, resetAt: counter?.expiresAt ?? now + ttlMs, refused: i }
      }
      const counted = list.map((c) => c.take > 0 ? consumeNow(c.key, c.take, c.limit, ttlMs) : { count: liveCounter(c.key, now)?.count ?? 0, resetAt: liveCounter(c.key, now)?.expiresAt ?? now + ttlMs })
      addLease(lease.key, lease.holderId, lease.leaseMs, now)
      return { outcome: 'admitted', count: counted[0]?.count ?? 0, resetAt: counted[0]?.resetAt ?? now + ttlMs }
    },

    async get (key) {
      open()
      return liveCounter(key, clock())?.count ?? 0
    },

    async refund (key, amount) {
      open()
      const c = liveCounter(key, clock())
      if (c !== undefined) c.count = Math.max(0, c.count - amount)
    },

    async acquireLease (key, holderId, limit, leaseMs) {
      open()
      const now = clock()
      // Re-acquiring by the same holder refreshes its lease and still counts once.
      if (leaseFull(key, holderId, limit, now)) return false
      addLease(key, holderId, leaseMs, now)
      return true
    },

    async releaseLease (key, holderId) {
      open()
      const holders = leases.get(key)
      if (holders === undefined) return
      holders.delete(holderId)
      if (holders.size === 0) leases.delete(key)
    },

    async countLeases (key) {
      open()
      return liveLeases(key, clock())?.size ?? 0
    },

    async publish (channel, message) {
      open()
      // Delivered on a later tick, as Redis would: a subscriber never runs inside publish().
      setImmediate(() => bus.emit(channel, message))
    },

    // One process: nothing published is ever lost, so there is no resubscription to report.
    async subscribe (channel, onMessage) {
      open()
      bus.on(channel, (message: string) => { deliver(onMessage, message) })
    },

    async ping () {
      open()
    },

    async close () {
      closed = true
      counters.clear()
      leases.clear()
      bus.removeAllListeners()
    }
  })
}
