import { Cluster } from 'ioredis'
import { withCheckedArguments } from './checked-store.ts'
import { deliver, StoreUnavailableError, type AdmitResult, type ConsumeResult, type LimitStore, type TakeAllResult, type TakeResult } from './limit-store.ts'
import { ACQUIRE_LEASE, ADMIT, CONSUME, CONSUME_UP_TO, CONSUME_UP_TO_ALL, COUNT_LEASES, REFUND } from './redis-scripts.ts'
import { toStoreError, untilSettled } from './redis-errors.ts'
import { duplicateRedis, openRedis, type RedisClient } from './redis-connection.ts'

export interface RedisStoreOptions {
  /**
   * Prepended to every key and pub/sub channel, so deployments can share one Redis. No braces:
   * a key's cluster slot is decided by its first `{...}`, which must be the key's own hash tag.
   */
  keyPrefix?: string
  /** How long to wait for a TCP connection; default 2000 ms. */
  connectTimeoutMs?: number
  /** How long one command may wait for its reply; default connectTimeoutMs. */
  commandTimeoutMs?: number
  /** CLIENT SETNAME for the connections (the subscriber gets `<name>:sub`), for CLIENT LIST. */
  connectionName?: string
}

// The scripts below are attached with defineCommand; ioredis adds them as methods at runtime.
interface Scripts {
  limitStoreConsume: (key: string, amount: number, limit: number, ttlMs: number) => Promise<[number, number, number]>
  limitStoreRefund: (key: string, amount: number) => Promise<number>
  limitStoreConsumeUpTo: (key: string, amount: number, limit: number, ttlMs: number) => Promise<[number, number, number]>
  // These two take a variable number of keys: the first argument is how many.
  limitStoreConsumeUpToAll: (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<[number, number, number]>
  limitStoreAdmit: (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<[number, number, number, number]>
  limitStoreAcquireLease: (key: string, holderId: string, limit: number, leaseMs: number) => Promise<number>
  limitStoreCountLeases: (key: string) => Promise<number>
}

// A cluster's subscription is confirmed this many times, this far apart, while it moves node.
const CLUSTER_CONFIRM_RETRIES = 20
const CLUSTER_CONFIRM_RETRY_MS = 250

/** Reconnect forever with a capped backoff, so the service recovers without restart when Redis returns. */
function backoff (attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000)
}

/**
 * LimitStore on Redis. `client` is the command connection, exposed for @fastify/rate-limit.
 * Commands fail fast (no offline queue, one retry, command timeout) with StoreUnavailableError
 * while Redis is down, so requests get a quick 503 instead of piling up.
 */
export function createRedisStore (url: string, opts: RedisStoreOptions = {}): { store: LimitStore, client: RedisClient } {
  const connectTimeout = opts.connectTimeoutMs ?? 2000
  const prefix = opts.keyPrefix ?? ''
  if (/[{}]/.test(prefix)) throw new Error('keyPrefix must not contain { or }: it would take the place of every key\'s hash tag')
  const client = openRedis(url, {
    keyPrefix: prefix,
    connectTimeout,
    commandTimeout: opts.commandTimeoutMs ?? connectTimeout,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // A command cut off by a disconnect has already failed for its caller; replaying it later
    // could count a consume twice.
    autoResendUnfulfilledCommands: false,
    retryStrategy: backoff,
    ...(opts.connectionName === undefined ? {} : { connectionName: opts.connectionName })
  })
  // Connection errors surface through the commands that fail; without a listener ioredis would
  // report every reconnect attempt as an unhandled error event.
  client.on('error', () => {})
  client.defineCommand('limitStoreConsume', { numberOfKeys: 1, lua: CONSUME })
  client.defineCommand('limitStoreRefund', { numberOfKeys: 1, lua: REFUND })
  client.defineCommand('limitStoreConsumeUpTo', { numberOfKeys: 1, lua: CONSUME_UP_TO })
  client.defineCommand('limitStoreConsumeUpToAll', { lua: CONSUME_UP_TO_ALL })
  client.defineCommand('limitStoreAdmit', { lua: ADMIT })
  client.defineCommand('limitStoreAcquireLease', { numberOfKeys: 1, lua: ACQUIRE_LEASE })
  client.defineCommand('limitStoreCountLeases', { numberOfKeys: 1, lua: COUNT_LEASES })
  const scripts = client as unknown as Scripts

  let subscriber: RedisClient | undefined
  const handlers = new Map<string, Array<(message: string) => void>>() // full channel → handlers
  const resubscribed = new Map<string, Array<() => void>>() // full channel → onResubscribed
  let closed = false

  async function run<T> (conn: RedisClient, command: () => Promise<T>): Promise<T> {
    if (closed) throw new StoreUnavailableError('Redis store is closed')
    await untilSettled(conn, connectTimeout)
    try {
      return await command()
    } catch (err) {
      throw toStoreError(err)
    }
  }

  // Pub/sub needs its own connection (a subscribed connection can run nothing else); it is
  // opened on first use, and ioredis resubscribes its channels after every reconnect.
  function subscriberConnection (): RedisClient {
    if (subscriber !== undefined) return subscriber
    const sub = duplicateRedis(client, opts.connectionName === undefined ? undefined : `${opts.connectionName}:sub`)
    sub.on('error', () => {})
    sub.on('message', (channel: string, message: string) => {
      for (const onMessage of handlers.get(channel) ?? []) deliver(onMessage, message)
    })
    // After a reconnect ioredis subscribes again by itself; a SUBSCRIBE of our own confirms the
    // channels really hold (its reply comes after ioredis's) before subscribers re-check what
    // they may have missed, so nothing published after their check can be lost too.
    let connectedBefore = false
    const confirm = (attemptsLeft: number): void => {
      const channels = [...resubscribed.keys()].filter((channel) => handlers.has(channel))
      if (channels.length === 0 || closed) return
      run(sub, async () => await sub.subscribe(...channels)).then(() => {
        for (const channel of channels) for (const listener of resubscribed.get(channel) ?? []) deliver(listener, '')
      }, () => {
        // Lost again: on one server the next ready tries again; a cluster may not say so.
        if (attemptsLeft > 0) setTimeout(() => { confirm(attemptsLeft - 1) }, CLUSTER_CONFIRM_RETRY_MS).unref()
      })
    }
    sub.on('ready', () => {
      if (!connectedBefore) { connectedBefore = true; return }
      confirm(0)
    })
    // On a cluster the subscription sits on one node and moves to another by itself when that
    // node goes (no ready of the cluster client): a node leaving or joining the layout (a
    // failover) is when a notice may have been lost, so subscribers re-check then too.
    if (client instanceof Cluster) {
      for (const event of ['-node', '+node']) sub.on(event, () => { if (connectedBefore) confirm(CLUSTER_CONFIRM_RETRIES) })
    }
    subscriber = sub
    return sub
  }

  async function quit (conn: RedisClient): Promise<void> {
    try {
      if (conn.status === 'ready') {
        await conn.quit()
        return
      }
    } catch {}
    conn.disconnect() // not connected (or QUIT failed): just stop reconnecting
  }

  const store: LimitStore = {
    kind: 'redis',

    async consume (key, amount, limit, ttlMs): Promise<ConsumeResult> {
      const [allowed, count, pttl] = await run(client, async () => await scripts.limitStoreConsume(key, amount, limit, ttlMs))
      // PTTL is relative, so resetAt is on this instance's clock, where Retry-After is computed.
      return { allowed: allowed === 1, count, resetAt: Date.now() + (pttl > 0 ? pttl : ttlMs) }
    },

    async consumeUpTo (key, amount, limit, ttlMs): Promise<TakeResult> {
      const [taken, count, pttl] = await run(client, async () => await scripts.limitStoreConsumeUpTo(key, amount, limit, ttlMs))
      return { taken, count, resetAt: Date.now() + (pttl > 0 ? pttl : ttlMs) }
    },

    async consumeUpToAll (counters, amount, ttlMs): Promise<TakeAllResult> {
      const keys = counters.map((c) => c.key)
      const [taken, limitedBy, pttl] = await run(client, async () => await scripts.limitStoreConsumeUpToAll(keys.length, ...keys, amount, ttlMs, ...counters.map((c) => c.limit)))
      return { taken, limitedBy, resetAt: Date.now() + (pttl > 0 ? pttl : ttlMs) }
    },

    async admit (lease, counters, ttlMs): Promise<AdmitResult> {
      const keys = [lease.key, ...counters.map((c) => c.key)]
      const args = [lease.holderId, lease.limit, lease.leaseMs, ttlMs, ...counters.flatMap((c) => [c.take, c.limit])]
      const [outcome, count, pttl, refused] = await run(client, async () => await scripts.limitStoreAdmit(keys.length, ...keys, ...args))
      return {
        outcome: outcome === 1 ? 'admitted' : outcome === 0 ? 'lease-refused' : 'counter-refused',
        count,
        resetAt: Date.now() + (pttl > 0 ? pttl : ttlMs),
        ...(outcome === 2 ? { refused } : {})
      }
    },

    async get (key) {
      const value = await run(client, async () => await client.get(key))
      return value === null ? 0 : Number(value)
    },

    async refund (key, amount) {
      await run(client, async () => await scripts.limitStoreRefund(key, amount))
    },

    async acquireLease (key, holderId, limit, leaseMs) {
      return await run(client, async () => await scripts.limitStoreAcquireLease(key, holderId, limit, leaseMs)) === 1
    },

    async releaseLease (key, holderId) {
      await run(client, async () => await client.zrem(key, holderId))
    },

    async countLeases (key) {
      return await run(client, async () => await scripts.limitStoreCountLeases(key))
    },

    async publish (channel, message) {
      // keyPrefix covers keys only; channels get the same prefix by hand.
      await run(client, async () => await client.publish(prefix + channel, message))
    },

    async subscribe (channel, onMessage, onResubscribed) {
      if (closed) throw new StoreUnavailableError('Redis store is closed')
      const full = prefix + channel
      const list = handlers.get(full) ?? []
      list.push(onMessage)
      handlers.set(full, list)
      const again = resubscribed.get(full) ?? []
      if (onResubscribed !== undefined) {
        again.push(onResubscribed)
        resubscribed.set(full, again)
      }
      try {
        // SUBSCRIBE is idempotent, so every call confirms the channel is really subscribed.
        const sub = subscriberConnection()
        await run(sub, async () => await sub.subscribe(full))
      } catch (err) {
        // Not subscribed: forget this handler so a later retry does not deliver twice.
        list.splice(list.lastIndexOf(onMessage), 1)
        if (list.length === 0) handlers.delete(full)
        if (onResubscribed !== undefined) {
          again.splice(again.lastIndexOf(onResubscribed), 1)
          if (again.length === 0) resubscribed.delete(full)
        }
        throw err
      }
    },

    async ping () {
      await run(client, async () => await client.ping())
    },

    async close () {
      if (closed) return
      closed = true
      handlers.clear()
      resubscribed.clear()
      await Promise.all([quit(client), subscriber === undefined ? undefined : quit(subscriber)])
    }
  }
  return { store: withCheckedArguments(store), client }
}
