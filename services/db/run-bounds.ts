import type { ControlConnectionProvider, DatabaseConnection } from 'kysely'
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
 * While a tenant transaction holds `connection`: when the run ends, its statement in progress is
 * cancelled (pg_cancel_backend from another pooled connection, as Kysely's PostgreSQL driver does
 * it), so the transaction fails and is rolled back now rather than at its statement_timeout.
 * `stop` waits for a cancel already sent: it must land before the connection is reused. PGlite's
 * one session has no second connection to cancel from; there the statement_timeout ends it.
 */
export async function cancelOnRunEnd (bounds: RunBounds | undefined, connection: DatabaseConnection, control: ControlConnectionProvider): Promise<{ stop: () => Promise<void> }> {
  const ended = bounds?.ended
  if (ended === undefined || connection.cancelQuery === undefined) return { stop: async () => {} }
  // The backend's pid; pg's client already knows it, so this costs no round trip there.
  await connection.collectSessionInfo?.()
  let cancelling: Promise<void> | undefined
  const onEnd = (): void => { cancelling = connection.cancelQuery!(control).catch(() => {}) }
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
