import { sql, type RawBuilder } from 'kysely'
import type { TenantTrx } from '../db/with-tenant.ts'
import { emptyHistogram, histogramMedian } from './duration-histogram.ts'

/** The sums of one UTC day (of a tenant, or of one of its users), from the daily rollup. */
/** The sums the daily rollup keeps, per (tenant, user, day). */
export interface UsageCounts {
  executions: number
  failures: number
  toolCalls: number
  cpuMs: number
  wallMs: number
  bytesIn: number
  bytesOut: number
}

export interface UsageDay extends UsageCounts {
  /** The UTC day, YYYY-MM-DD. */
  date: string
  /**
   * Approximate median duration of the day's executions in ms, from the rollup's histogram
   * (duration-histogram.ts: within ±19 %); 0 on a day without any, like the counts.
   */
  p50DurationMs: number
}

export const DAY_MS = 86_400_000

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** The UTC midnight of `now`, in ms. */
export const utcMidnight = (now: Date): number => Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())

/** The rollup's summed columns as the driver returns them (bigint sums come back as text). */
export interface SummedDayColumns {
  day: string
  executions: string
  failures: string
  tool_calls: string
  cpu_ms: string
  wall_ms: string
  bytes_in: string
  bytes_out: string
}

interface DayRow extends SummedDayColumns {
  histograms: number[][] | number[] | null
}

/**
 * `tenant_id = <the transaction's tenant>`, from the transaction's own setting (never a value the
 * caller passes), so it can only narrow what RLS shows. RLS alone would do, but usage_daily has
 * two permissive policies (the tenant's, and the platform's read across tenants), which
 * PostgreSQL ORs into one filter that no index serves: every query on the table then scanned
 * all of it (130 ms for 90 days in bench/usage-history.ts). With this predicate it is a range
 * scan of the tenant's days on the primary key.
 */
export const OWN_TENANT = sql<boolean>`tenant_id = nullif(current_setting('app.tenant_id', true), '')`

/** The SQL of readUsageHistory (bench/usage-history.ts runs it under EXPLAIN ANALYZE). */
export function usageHistoryQuery (days: number, now: Date, options: { userId?: string } = {}): RawBuilder<DayRow> {
  const today = utcMidnight(now)
  const from = today - (days - 1) * DAY_MS
  const user = options.userId === undefined ? sql`` : sql`and user_id = ${options.userId}`
  // Days as text both ways: a `date` read back through a driver becomes a local-time Date.
  return sql<DayRow>`
    select to_char(day, 'YYYY-MM-DD') as day, sum(executions) as executions, sum(failures) as failures,
           sum(tool_calls) as tool_calls, sum(cpu_ms) as cpu_ms, sum(wall_ms) as wall_ms,
           sum(bytes_in) as bytes_in, sum(bytes_out) as bytes_out, array_agg(duration_histogram) as histograms
    from usage_daily
    where ${OWN_TENANT} and day >= ${isoDay(from)}::date and day <= ${isoDay(today)}::date ${user}
    group by day`
}

/**
 * The tenant's runs per UTC day for the last `days` days, today included, oldest first; a day
 * without runs is all zeros. Read from usage_daily (a few rows a day: one per user who ran
 * something), scoped by RLS (OWN_TENANT repeats the transaction's own tenant for the planner; it
 * takes no tenant from the caller). `userId`: that user's runs only. Refusals are not executions;
 * a failure is a run that did not succeed. Rows reach the rollup with the audit writer's batches (within
 * AUDIT_BATCH_DELAY_MS of a run's end).
 */
export async function readUsageHistory (trx: TenantTrx, days: number, now = new Date(), options: { userId?: string } = {}): Promise<UsageDay[]> {
  const from = utcMidnight(now) - (days - 1) * DAY_MS
  const result = await usageHistoryQuery(days, now, options).execute(trx)
  const byDay = new Map(result.rows.map((row) => [row.day, row]))
  const out: UsageDay[] = []
  for (let i = 0; i < days; i++) {
    const date = isoDay(from + i * DAY_MS)
    const row = byDay.get(date)
    out.push({
      date,
      executions: Number(row?.executions ?? 0),
      failures: Number(row?.failures ?? 0),
      toolCalls: Number(row?.tool_calls ?? 0),
      cpuMs: Number(row?.cpu_ms ?? 0),
      wallMs: Number(row?.wall_ms ?? 0),
      bytesIn: Number(row?.bytes_in ?? 0),
      bytesOut: Number(row?.bytes_out ?? 0),
      p50DurationMs: histogramMedian(mergeHistograms(row?.histograms ?? null))
    })
  }
  return out
}

// array_agg of equal-length arrays is a two-dimensional array; drivers hand it back nested
// (node-postgres) or, for a single row, possibly flat.
function mergeHistograms (histograms: number[][] | number[] | null): number[] {
  const merged = emptyHistogram()
  if (histograms === null) return merged
  const rows = (histograms.length > 0 && !Array.isArray(histograms[0])) ? [histograms as number[]] : histograms as number[][]
  for (const counts of rows) {
    for (let i = 0; i < counts.length && i < merged.length; i++) merged[i]! += Number(counts[i])
  }
  return merged
}

/** One user's runs of today (UTC) in the tenant, for GET /api/usage?groupBy=user. */
export interface UserUsage {
  userId: string
  executions: number
  toolCalls: number
  cpuMs: number
}

/** Users a usage answer lists at most: the busiest; the export lists every one. */
export const MAX_USERS_LISTED = 1000

/** Today's (UTC) rollup per user, most executions first (at most MAX_USERS_LISTED); `userId`: that user only. RLS scopes it. */
export async function readUsersToday (trx: TenantTrx, now = new Date(), options: { userId?: string } = {}): Promise<UserUsage[]> {
  let query = trx.selectFrom('usage_daily')
    .select(['user_id', 'executions', 'tool_calls', 'cpu_ms'])
    .where(OWN_TENANT)
    .where('day', '=', isoDay(utcMidnight(now)))
    .orderBy('executions', 'desc')
    .orderBy('user_id')
    .limit(MAX_USERS_LISTED)
  if (options.userId !== undefined) query = query.where('user_id', '=', options.userId)
  const rows = await query.execute()
  return rows.map((r) => ({ userId: r.user_id, executions: Number(r.executions), toolCalls: Number(r.tool_calls), cpuMs: Number(r.cpu_ms) }))
}
