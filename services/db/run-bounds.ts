import { CompiledQuery, type ControlConnectionProvider } from 'kysely'
import type { Tier } from '../tenants/tiers.ts'

/**
 * What a run allows the database work it starts: the time it has left and the signal that it
 * ended. A caller told TIMEOUT or CANCELLED must be able to trust that nothing more happened,
 * so a tenant transaction carries a statement_timeout no longer than the run's remaining time
 * (the server stops the statement even if this process cannot), is cancelled when the run ends,
 * and is rolled back instead of committed once the run is over.
 */
export interface RunBounds {
  /** When the run ends at the latest (Date.now() milliseconds). */
  deadline: number
  /** The tier's longest statement, whatever time the run has left. */
  ceilingMs: number
  /** Aborted when the run ends (TIMEOUT, CANCELLED, a crash). */
  ended?: AbortSignal
  /** The tenant's tier: whose share of the pool the run's connections come from (absent: free). */
  tier?: Tier
}

/**
 * Database work refused or undone because its run is over: nothing of it was committed. The
 * script never sees it (its run has ended); the message is for the host's log.
 */
export class RunEndedError extends Error {
  override name = 'RunEndedError'

  constructor (what = 'The run ended before its database work finished: it was rolled back', options?: ErrorOptions) {
    super(what, options)
  }
}

/** The run is over, by its signal or by the clock. */
export function runIsOver (bounds: RunBounds | undefined): boolean {
  return bounds !== undefined && (bounds.ended?.aborted === true || Date.now() >= bounds.deadline)
}

/**
 * The statement_timeout, in whole milliseconds (at least 1: 0 would mean none), for work
 * starting now; throws RunEndedError when the run has no time left.
 */
export function statementTimeoutMs (bounds: RunBounds): number {
  if (runIsOver(bounds)) throw new RunEndedError('The run ended before its database work started')
  return Math.max(1, Math.min(Math.ceil(bounds.deadline - Date.now()), Math.floor(bounds.ceilingMs)))
}

/**
 * While a tenant transaction runs on the PostgreSQL backend `backendPid`: when the run ends, its
 * statement in progress is cancelled (pg_cancel_backend from another pooled connection), so the
 * transaction fails and is rolled back now rather than at its statement_timeout. The pid is the
 * one the transaction itself read (pg_backend_pid() in its BEGIN message), not the one the
 * client was given at login: behind a transaction pooler (PgBouncer) the login's "pid" names no
 * backend, and the backend changes from one transaction to the next, but stays the same while
 * the transaction is open. `stop` waits for a cancel already sent: it must land before the
 * transaction ends, so that it can only ever hit this transaction's statement. Without a pid
 * (PGlite's one session has no second connection to cancel from) the statement_timeout ends it.
 */
export function cancelOnRunEnd (bounds: RunBounds | undefined, backendPid: number | undefined, control: ControlConnectionProvider): { stop: () => Promise<void> } {
  const ended = bounds?.ended
  if (ended === undefined || backendPid === undefined || !Number.isSafeInteger(backendPid)) return { stop: async () => {} }
  let cancelling: Promise<void> | undefined
  const onEnd = (): void => {
    cancelling = control(async (connection) => {
      await connection.executeQuery(CompiledQuery.raw(`select pg_cancel_backend(${String(backendPid)})`))
    }).catch(() => {})
  }
  if (ended.aborted) onEnd()
  else ended.addEventListener('abort', onEnd, { once: true })
  return {
    // Idempotent: withTenant stops the watch before its commit and again when it is done.
    stop: async () => {
      ended.removeEventListener('abort', onEnd)
      await cancelling
    }
  }
}
