import { FifoSemaphore, SemaphoreTimeoutError, type KeyedSemaphore } from '../fifo-semaphore.ts'
import type { Tier } from '../tenants/tiers.ts'
import { RunEndedError, runIsOver, type RunBounds } from './run-bounds.ts'

/**
 * Pooled connections a tier's runs may hold together, in aggregate: with a per-tenant cap alone,
 * four free tenants held the whole pool and an enterprise tenant's one-row query waited seconds or
 * failed. Free and starter are bounded (their shares of DATABASE_POOL_SIZE); enterprise is bounded
 * only per tenant, so a paid tenant finds a connection whatever the lower tiers do.
 */
export type TierConnections = Partial<Record<Tier, FifoSemaphore>>

/**
 * A tier's longest statement when shorter than its runs may last (free: a scan that long holds
 * one of the few statements the tier may run at once). Past it the script is told (StatementTooLongError).
 */
export type TierStatementMs = Partial<Record<Tier, number>>

/** A statement stopped at its tier's statement bound: the script is told which and what to do. */
export class StatementTooLongError extends Error {
  override name = 'StatementTooLongError'
}

/** The run's bounds with its tier's statement bound applied, and that bound when it is the one that binds. */
export function tierBounded (bounds: RunBounds, statementMs: TierStatementMs | undefined): { bounds: RunBounds, tierMs?: number } {
  const tierMs = statementMs?.[bounds.tier ?? 'free']
  if (tierMs === undefined || tierMs >= bounds.ceilingMs) return { bounds }
  return { bounds: { ...bounds, ceilingMs: tierMs }, tierMs }
}

/** A failure of work under tierBounded: a statement PostgreSQL stopped at the tier's bound (57014) becomes StatementTooLongError. */
export function tierStatementFailure (err: unknown, bounded: { bounds: RunBounds, tierMs?: number }): unknown {
  if (bounded.tierMs === undefined || (err as { code?: unknown } | undefined)?.code !== '57014' || runIsOver(bounded.bounds)) return err
  const tier = bounded.bounds.tier ?? 'free'
  return new StatementTooLongError(`A database statement ran past the ${tier} tier's ${bounded.tierMs} ms limit and was stopped: narrow it (a filter, a smaller limit) or split the work into smaller calls`, { cause: err })
}

/**
 * What the lower tiers' statements may hold of the database, each tier in aggregate: a count of
 * pool connections, and no more statements at once than the database has cores for them. A share
 * of connections alone did not do: three CPU-bound scans (the free share of a pool of 10) on a
 * database with two cores left a paid tenant's one-row statement competing for CPU inside
 * PostgreSQL, where no share applies. Free statements may take half the cores, starter all but
 * one, each at least one: a paid tenant's statement always finds a core the lower tiers leave.
 */
export interface TierShareSettings {
  poolSize: number
  freePercent: number
  starterPercent: number
  /** The database server's cores (DATABASE_CPU_CORES). */
  cpuCores: number
}

/** Each lower tier's bound: the smaller of its share of the pool and its share of the cores. */
export function tierStatementLimits (settings: TierShareSettings): { free: number, starter: number } {
  const pool = (percent: number): number => Math.max(1, Math.floor(settings.poolSize * percent / 100))
  return {
    free: Math.min(pool(settings.freePercent), Math.max(1, Math.floor(settings.cpuCores / 2))),
    starter: Math.min(pool(settings.starterPercent), Math.max(1, settings.cpuCores - 1))
  }
}

export function tierConnections (settings: TierShareSettings): TierConnections {
  const limits = tierStatementLimits(settings)
  return { free: new FifoSemaphore(limits.free), starter: new FifoSemaphore(limits.starter) }
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
