import { FifoSemaphore, SemaphoreTimeoutError, type KeyedSemaphore } from '../fifo-semaphore.ts'
import type { Tier } from '../tenants/tiers.ts'
import { RunEndedError, type RunBounds } from './run-bounds.ts'

/**
 * Pooled connections a tier's runs may hold together, in aggregate: with a per-tenant cap alone,
 * four free tenants held the whole pool and an enterprise tenant's one-row query waited seconds or
 * failed. Free and starter are bounded (their shares of DATABASE_POOL_SIZE); enterprise is bounded
 * only per tenant, so a paid tenant finds a connection whatever the lower tiers do.
 */
export type TierConnections = Partial<Record<Tier, FifoSemaphore>>

/** DATABASE_FREE_SHARE_PERCENT / DATABASE_STARTER_SHARE_PERCENT of the pool, each at least one connection. */
export function tierConnections (poolSize: number, freePercent: number, starterPercent: number): TierConnections {
  const share = (percent: number): FifoSemaphore => new FifoSemaphore(Math.max(1, Math.floor(poolSize * percent / 100)))
  return { free: share(freePercent), starter: share(starterPercent) }
}

/**
 * No connection came free for the tier within the run's remaining time. Its message reaches the
 * script (a catchable TOOL_ERROR): a busy database is worth retrying, unlike a failed query.
 */
export class DatabaseBusyError extends Error {
  override name = 'DatabaseBusyError'
}

/**
 * Takes the tenant's place, then its tier's, each wait at most half the time the run has left
 * (DatabaseBusyError) and never past the run's end (RunEndedError); answers one release for both. Without bounds (work outside a run), only the
 * tenant's cap applies and the wait is not bounded.
 */
export async function acquireConnectionShare (tenants: KeyedSemaphore, tiers: TierConnections | undefined, tenantId: string, bounds: RunBounds | undefined): Promise<() => void> {
  if (bounds === undefined) return await tenants.acquire(tenantId)
  const tierShare = tiers?.[bounds.tier ?? 'free']
  const releaseTenant = await waitFor((waitMs) => tenants.acquire(tenantId, waitMs), bounds, 'for this tenant (its calls already hold its share of connections)')
  if (tierShare === undefined) return releaseTenant
  try {
    const releaseTier = await waitFor((waitMs) => tierShare.acquire(waitMs), bounds, `for the ${bounds.tier ?? 'free'} tier`)
    return () => { releaseTier(); releaseTenant() }
  } catch (err) {
    releaseTenant()
    throw err
  }
}

async function waitFor (acquire: (waitMs: number) => Promise<() => void>, bounds: RunBounds, who: string): Promise<() => void> {
  const ended = bounds.ended
  if (ended?.aborted === true) throw new RunEndedError('The run ended before its database work started')
  // Half the time left: the script then still has time to catch the TOOL_ERROR and react.
  const waiting = acquire(Math.max(0, Math.floor((bounds.deadline - Date.now()) / 2)))
  if (ended === undefined) return await translate(waiting, who)
  // A run that ends while its call waits gives up the wait now; a place granted later is handed on at once.
  let onEnd: () => void = () => {}
  const end = new Promise<never>((_resolve, reject) => {
    onEnd = () => { reject(new RunEndedError('The run ended while its database work waited for a connection')) }
    ended.addEventListener('abort', onEnd, { once: true })
  })
  try {
    return await Promise.race([translate(waiting, who), end])
  } catch (err) {
    if (err instanceof RunEndedError) waiting.then((release) => { release() }, () => {})
    throw err
  } finally {
    ended.removeEventListener('abort', onEnd)
  }
}

async function translate (waiting: Promise<() => void>, who: string): Promise<() => void> {
  try {
    return await waiting
  } catch (err) {
    if (!(err instanceof SemaphoreTimeoutError)) throw err
    throw new DatabaseBusyError(`The database is busy ${who}: no connection came free before the run's end; retry later`, { cause: err })
  }
}
