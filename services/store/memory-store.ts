import { EventEmitter } from 'node:events'
import { assertInteger, assertKey, deliver, StoreUnavailableError, type ConsumeResult, type LimitStore } from './limit-store.ts'

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

  return {
    kind: 'memory',

    async consume (key, amount, limit, ttlMs): Promise<ConsumeResult> {
      open()
      assertKey('key', key)
      assertInteger('amount', amount, 1)
      assertInteger('limit', limit, 0)
      assertInteger('ttlMs', ttlMs, 1)
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
    },

    async get (key) {
      open()
      assertKey('key', key)
      return liveCounter(key, clock())?.count ?? 0
    },

    async refund (key, amount) {
      open()
      assertKey('key', key)
      assertInteger('amount', amount, 1)
      const c = liveCounter(key, clock())
      if (c !== undefined) c.count = Math.max(0, c.count - amount)
    },

    async acquireLease (key, holderId, limit, leaseMs) {
      open()
      assertKey('key', key)
      assertKey('holderId', holderId)
      assertInteger('limit', limit, 0)
      assertInteger('leaseMs', leaseMs, 1)
      const now = clock()
      const holders = liveLeases(key, now) ?? new Map<string, number>()
      // Re-acquiring by the same holder refreshes its lease and still counts once.
      if (!holders.has(holderId) && holders.size >= limit) return false
      holders.set(holderId, now + leaseMs)
      leases.set(key, holders)
      wrote(now)
      return true
    },

    async releaseLease (key, holderId) {
      open()
      assertKey('key', key)
      assertKey('holderId', holderId)
      const holders = leases.get(key)
      if (holders === undefined) return
      holders.delete(holderId)
      if (holders.size === 0) leases.delete(key)
    },

    async countLeases (key) {
      open()
      assertKey('key', key)
      return liveLeases(key, clock())?.size ?? 0
    },

    async publish (channel, message) {
      open()
      assertKey('channel', channel)
      // Delivered on a later tick, as Redis would: a subscriber never runs inside publish().
      setImmediate(() => bus.emit(channel, message))
    },

    async subscribe (channel, onMessage) {
      open()
      assertKey('channel', channel)
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
  }
}
