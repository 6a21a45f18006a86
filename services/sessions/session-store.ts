import type { RedisClient } from '../store/redis-connection.ts'
import { toStoreError, untilSettled } from '../store/redis-errors.ts'

/** What a session keeps besides its counters. `keys` is sealed with the identity's store key. */
export interface StoredSession {
  tenantId: string
  userId: string
  /** epoch ms */
  expiresAt: number
  /** The two AES keys, sealed (see session-service.ts): whoever reads the store cannot use them. */
  sealedKeys: string
}

export type FrameAcceptance =
  | { status: 'accepted', s2cCounter: number }
  | { status: 'replayed' }
  | { status: 'gone' }

/**
 * Sessions shared by every instance (Redis) or held by this one (memory). The counter check is
 * atomic: two instances given the same frame accept it once.
 */
export interface SessionStore {
  readonly kind: 'redis' | 'memory'
  create (sessionId: string, session: StoredSession): Promise<void>
  /** null when unknown or expired. */
  get (sessionId: string): Promise<StoredSession | null>
  /**
   * Accepts a client frame's counter only if it is above every counter accepted before, and then
   * reserves `s2cFrames` consecutive server counters (the first is returned).
   */
  acceptFrame (sessionId: string, counter: number, s2cFrames: number): Promise<FrameAcceptance>
  /** Reserves more server counters (a stream's further frames); null when the session is gone. */
  reserveS2c (sessionId: string, frames: number): Promise<number | null>
  close (): Promise<void>
}

interface MemoryEntry { session: StoredSession, lastC2s: number, nextS2c: number }

/** One instance's sessions (no REDIS_URL): same semantics, in a Map swept of expired entries. */
export function createMemorySessionStore (now: () => number = Date.now): SessionStore {
  const entries = new Map<string, MemoryEntry>()
  const live = (sessionId: string): MemoryEntry | undefined => {
    const entry = entries.get(sessionId)
    if (entry !== undefined && entry.session.expiresAt <= now()) {
      entries.delete(sessionId)
      return undefined
    }
    return entry
  }
  const sweep = setInterval(() => { for (const id of entries.keys()) live(id) }, 60_000)
  sweep.unref()
  return {
    kind: 'memory',
    async create (sessionId, session) {
      entries.set(sessionId, { session: { ...session }, lastC2s: -1, nextS2c: 0 })
    },
    async get (sessionId) {
      const entry = live(sessionId)
      return entry === undefined ? null : { ...entry.session }
    },
    // Synchronous between the lookup and the update, so concurrent requests cannot interleave.
    async acceptFrame (sessionId, counter, s2cFrames) {
      const entry = live(sessionId)
      if (entry === undefined) return { status: 'gone' }
      if (counter <= entry.lastC2s) return { status: 'replayed' }
      entry.lastC2s = counter
      const s2cCounter = entry.nextS2c
      entry.nextS2c += s2cFrames
      return { status: 'accepted', s2cCounter }
    },
    async reserveS2c (sessionId, frames) {
      const entry = live(sessionId)
      if (entry === undefined) return null
      const first = entry.nextS2c
      entry.nextS2c += frames
      return first
    },
    async close () {
      clearInterval(sweep)
      entries.clear()
    }
  }
}

// A hash per session: t tenant, u user, e expiresAt, k sealed keys, c last client counter
// (-1: none yet), s next server counter. The key expires with the session.
const ACCEPT_FRAME = `
local last = redis.call('HGET', KEYS[1], 'c')
if not last then return {-1, 0} end
if tonumber(ARGV[1]) <= tonumber(last) then return {0, 0} end
redis.call('HSET', KEYS[1], 'c', ARGV[1])
local s = redis.call('HINCRBY', KEYS[1], 's', ARGV[2])
return {1, s - tonumber(ARGV[2])}
`
const RESERVE_S2C = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 's', ARGV[1]) - tonumber(ARGV[1])
`

interface Scripts {
  enclaveSessionAccept: (key: string, counter: string, frames: number) => Promise<[number, number]>
  enclaveSessionReserve: (key: string, frames: number) => Promise<number>
}

/** Sessions in Redis, on the store's command connection (its prefix, timeouts and 503 mapping). */
export function createRedisSessionStore (client: RedisClient, options: { keyPrefix?: string, timeoutMs?: number } = {}): SessionStore {
  const prefix = options.keyPrefix ?? 'tenant-enclave:session:'
  const timeoutMs = options.timeoutMs ?? 2000
  client.defineCommand('enclaveSessionAccept', { numberOfKeys: 1, lua: ACCEPT_FRAME })
  client.defineCommand('enclaveSessionReserve', { numberOfKeys: 1, lua: RESERVE_S2C })
  const scripts = client as unknown as Scripts
  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    await untilSettled(client, timeoutMs)
    try {
      return await command()
    } catch (err) {
      throw toStoreError(err)
    }
  }
  return {
    kind: 'redis',
    async create (sessionId, session) {
      const key = prefix + sessionId
      const ttlMs = Math.max(1, session.expiresAt - Date.now())
      await run(async () => await client.multi()
        .hset(key, { t: session.tenantId, u: session.userId, e: String(session.expiresAt), k: session.sealedKeys, c: '-1', s: '0' })
        .pexpire(key, ttlMs)
        .exec())
    },
    async get (sessionId) {
      const fields = await run(async () => await client.hmget(prefix + sessionId, 't', 'u', 'e', 'k'))
      const [t, u, e, k] = fields
      if (t == null || u == null || e == null || k == null) return null
      return { tenantId: t, userId: u, expiresAt: Number(e), sealedKeys: k }
    },
    async acceptFrame (sessionId, counter, s2cFrames) {
      const [status, s2cCounter] = await run(async () => await scripts.enclaveSessionAccept(prefix + sessionId, String(counter), s2cFrames))
      if (status === -1) return { status: 'gone' }
      if (status === 0) return { status: 'replayed' }
      return { status: 'accepted', s2cCounter }
    },
    async reserveS2c (sessionId, frames) {
      const first = await run(async () => await scripts.enclaveSessionReserve(prefix + sessionId, frames))
      return first < 0 ? null : first
    },
    // The connection belongs to the store plugin, which closes it.
    async close () {}
  }
}
