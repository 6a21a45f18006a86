import pg from 'pg'
import type { PostgresPool, PostgresPoolClient } from 'kysely'
import { sendCancelRequest } from './cancel-request.ts'

/** PostgreSQL cannot be reached, or the connection broke under a query: a 503, not a bug. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError'
  readonly code = 'DATABASE_UNAVAILABLE'
  constructor (cause: unknown) {
    super(`PostgreSQL unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}

/**
 * The pool as Kysely uses it, with connection failures tagged DatabaseUnavailableError. pg gives
 * them no class or code ("timeout exceeded when trying to connect", "Connection terminated
 * unexpectedly" are plain Errors), so they are told by where they happen:
 * - connect() fails only for want of a server, except a server's own refusal (a
 *   pg.DatabaseError: its SQLSTATE, e.g. 57P03 or 28P01, says what it is);
 * - a query on a client that has emitted 'error' or 'end' failed because the connection did.
 *   pg emits 'error' synchronously as the socket fails, and delivers the query's rejection on
 *   a later tick, so the client is marked before the rejection is seen.
 * Two more things the wrapped clients do:
 * - a message of several statements (the simple protocol) answers as its last statement, where
 *   pg answers an array that Kysely's driver reads as no rows: withTenant reads what its
 *   `begin; select ...` message returns;
 * - `cancel()` cancels the client's running statement by the protocol's CancelRequest
 *   (see cancel-request.ts), which works behind PgBouncer, where `processID` is not a backend's.
 */
export interface CancellablePoolClient extends PostgresPoolClient {
  cancel: () => Promise<void>
}

export interface TaggingPool extends PostgresPool {
  connect: () => Promise<CancellablePoolClient>
}

export function taggingPool (pool: pg.Pool): TaggingPool {
  const lost = new WeakSet<pg.PoolClient>()
  pool.on('connect', (client) => {
    const mark = (): void => { lost.add(client) }
    client.on('error', mark)
    client.on('end', mark)
  })
  const wrappers = new WeakMap<pg.PoolClient, CancellablePoolClient>()
  const wrap = (client: pg.PoolClient): CancellablePoolClient => {
    let wrapper = wrappers.get(client)
    if (wrapper === undefined) {
      const tag = (err: unknown): never => {
        throw lost.has(client) && !(err instanceof pg.DatabaseError) ? new DatabaseUnavailableError(err) : err
      }
      wrapper = {
        get processID () { return (client as { processID?: number }).processID },
        query: ((...args: Parameters<pg.PoolClient['query']>) => {
          const answer = (client.query as (...a: unknown[]) => unknown)(...args)
          // A cursor answers synchronously; only a promise can reject.
          return answer instanceof Promise ? answer.then(lastResult, tag) : answer
        }) as PostgresPoolClient['query'],
        cancel: async () => {
          const { host, port, processID, secretKey } = client as unknown as { host: string, port: number, processID: number, secretKey: number }
          await sendCancelRequest({ host, port, processID, secretKey })
        },
        release: (destroy?: boolean) => { client.release(destroy) }
      }
      wrappers.set(client, wrapper)
    }
    return wrapper
  }
  return {
    options: pool.options,
    connect: async () => {
      try {
        return wrap(await pool.connect())
      } catch (err) {
        throw err instanceof pg.DatabaseError ? err : new DatabaseUnavailableError(err)
      }
    },
    end: async () => { await pool.end() }
  }
}

function lastResult (answer: unknown): unknown {
  return Array.isArray(answer) && answer.length > 0 ? answer[answer.length - 1] : answer
}
