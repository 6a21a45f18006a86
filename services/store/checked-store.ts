import type { LimitStore } from './limit-store.ts'

// Both stores validate through this one wrapper, so a bad argument fails identically with or
// without Redis (and never reaches a Lua script as a float, NaN or an empty key).
function assertKey (name: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`)
}

function assertInteger (name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`)
}

function assertCounterArgs (key: string, amount: number, limit: number, ttlMs: number): void {
  assertKey('key', key)
  assertInteger('amount', amount, 1)
  assertInteger('limit', limit, 0)
  assertInteger('ttlMs', ttlMs, 1)
}

function assertLeaseArgs (key: string, holderId: string, limit: number, leaseMs: number, names = ['key', 'limit', 'leaseMs']): void {
  assertKey(names[0], key)
  assertKey('holderId', holderId)
  assertInteger(names[1], limit, 0)
  assertInteger(names[2], leaseMs, 1)
}

/** The store with every argument checked before it reaches the backend. */
export function withCheckedArguments (store: LimitStore): LimitStore {
  return {
    kind: store.kind,
    async consume (key, amount, limit, ttlMs) {
      assertCounterArgs(key, amount, limit, ttlMs)
      return await store.consume(key, amount, limit, ttlMs)
    },
    async consumeUpTo (key, amount, limit, ttlMs) {
      assertCounterArgs(key, amount, limit, ttlMs)
      return await store.consumeUpTo(key, amount, limit, ttlMs)
    },
    async consumeUpToAll (counters, amount, ttlMs) {
      if (counters.length === 0) throw new RangeError('consumeUpToAll needs at least one counter')
      for (const c of counters) { assertKey('key', c.key); assertInteger('limit', c.limit, 0) }
      assertInteger('amount', amount, 1)
      assertInteger('ttlMs', ttlMs, 1)
      return await store.consumeUpToAll(counters, amount, ttlMs)
    },
    async admit (lease, counters, ttlMs) {
      assertLeaseArgs(lease.key, lease.holderId, lease.limit, lease.leaseMs, ['lease.key', 'lease.limit', 'lease.leaseMs'])
      if (counters.length === 0) throw new RangeError('admit needs at least one counter')
      for (const c of counters) {
        assertKey('counter key', c.key)
        assertInteger('counter take', c.take, 0)
        assertInteger('counter limit', c.limit, 0)
      }
      assertInteger('ttlMs', ttlMs, 1)
      return await store.admit(lease, counters, ttlMs)
    },
    async get (key) {
      assertKey('key', key)
      return await store.get(key)
    },
    async refund (key, amount) {
      assertKey('key', key)
      assertInteger('amount', amount, 1)
      await store.refund(key, amount)
    },
    async acquireLease (key, holderId, limit, leaseMs) {
      assertLeaseArgs(key, holderId, limit, leaseMs)
      return await store.acquireLease(key, holderId, limit, leaseMs)
    },
    async releaseLease (key, holderId) {
      assertKey('key', key)
      assertKey('holderId', holderId)
      await store.releaseLease(key, holderId)
    },
    async countLeases (key) {
      assertKey('key', key)
      return await store.countLeases(key)
    },
    async publish (channel, message) {
      assertKey('channel', channel)
      await store.publish(channel, message)
    },
    async subscribe (channel, onMessage, onResubscribed) {
      assertKey('channel', channel)
      await store.subscribe(channel, onMessage, onResubscribed)
    },
    ping: async () => { await store.ping() },
    close: async () => { await store.close() }
  }
}
