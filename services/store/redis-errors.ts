import { StoreUnavailableError } from './limit-store.ts'
import type { RedisClient } from './redis-connection.ts'

// Error replies whose code means "Redis cannot serve now", not "this command is wrong". A Redis
// error reply starts with its code (RESP: "-LOADING Redis is loading..."); ioredis keeps it as
// the first word of ReplyError's message, and gives it no property of its own.
const UNAVAILABLE_REPLIES = new Set(['LOADING', 'BUSY', 'MASTERDOWN', 'READONLY', 'TRYAGAIN', 'CLUSTERDOWN', 'NOREPLICAS', 'OOM', 'NOAUTH', 'WRONGPASS'])

/**
 * Connection-level failures (refused, timed out, closed, no offline queue, retries exhausted,
 * Redis loading...) become StoreUnavailableError, with the original as `cause`. Other replies
 * (WRONGTYPE, a script error) are bugs and pass through unchanged. Every error from a Redis call
 * of the store goes through here: ioredis's own failures ("Connection is closed.", "Stream isn't
 * writeable...") are plain Errors, recognisable only by being errors of this call that are not
 * replies.
 */
export function toStoreError (err: unknown): Error {
  if (err instanceof StoreUnavailableError) return err
  const message = err instanceof Error ? err.message : String(err)
  if (err instanceof Error && err.name === 'ReplyError' && !UNAVAILABLE_REPLIES.has(message.split(' ', 1)[0] ?? '')) return err
  return new StoreUnavailableError(`Redis unavailable: ${message}`, { cause: err })
}

// One shared wait per connection, so a burst of requests at startup adds one set of listeners.
const pending = new WeakMap<RedisClient, Promise<void>>()

/**
 * While a connection attempt is under way (at startup, or a reconnect already dialling), wait for
 * its outcome, at most `timeoutMs`; otherwise return at once. Without this, enableOfflineQueue:
 * false would fail every command sent in the first milliseconds after start.
 */
export async function untilSettled (conn: RedisClient, timeoutMs: number): Promise<void> {
  if (conn.status !== 'wait' && conn.status !== 'connecting' && conn.status !== 'connect') return
  let wait = pending.get(conn)
  if (wait === undefined) {
    wait = new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        for (const event of ['ready', 'error', 'close', 'end']) conn.off(event, done)
        pending.delete(conn)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      timer.unref()
      for (const event of ['ready', 'error', 'close', 'end']) conn.once(event, done)
    })
    pending.set(conn, wait)
  }
  await wait
}

/**
 * `target` with the failures of the named Redis-calling methods passed through toStoreError, for
 * a Redis-backed object that does not tag its own calls. JavaScript's own errors (a JSON.parse
 * of a bad entry, a TypeError) are bugs, not outages, and pass through unchanged.
 */
export function withStoreErrors<T extends object> (target: T, methods: ReadonlyArray<keyof T>): T {
  const tagged = Object.create(target) as T
  for (const name of methods) {
    const method = target[name]
    if (typeof method !== 'function') continue
    Object.defineProperty(tagged, name, {
      value: async (...args: unknown[]) => {
        try {
          return await (method as (...a: unknown[]) => Promise<unknown>).apply(target, args)
        } catch (err) {
          throw err instanceof SyntaxError || err instanceof TypeError || err instanceof RangeError ? err : toStoreError(err)
        }
      }
    })
  }
  return tagged
}
