import { sql } from 'kysely'
import type { TenantTrx } from '../db/with-tenant.ts'
import { bucketOf, emptyHistogram } from './duration-histogram.ts'
import type { UsageCounts } from './usage-history.ts'

/** What a run's audit row adds to its day's rollup: the columns the insert returned. */
export interface RolledRow {
  user_id: string
  action: string
  success: boolean
  duration_ms: number | null
  tool_calls: number
  cpu_ms: number | null
  bytes_in: string | number | null
  bytes_out: string | number | null
  created_at: Date | string
}

interface DaySums extends UsageCounts {
  day: string
  userId: string
  histogram: number[]
}

const counted = (action: string): boolean => action === 'code_execution' || action === 'mcp.execute'

/** The UTC day of an audit row's time, YYYY-MM-DD (the migration's backfill uses the same day). */
export const utcDay = (at: Date | string): string => new Date(at).toISOString().slice(0, 10)

/**
 * Adds the rows just inserted (only those: a retried row that already existed is not returned
 * by the insert and so never counted twice) to usage_daily, in the caller's transaction. One
 * upsert per (day, user) in key order, so two instances adding to the same days take the row
 * locks in the same order and cannot deadlock. Refusals are not runs and add nothing.
 */
export async function addToRollups (trx: TenantTrx, tenantId: string, rows: readonly RolledRow[]): Promise<void> {
  const sums = new Map<string, DaySums>()
  for (const row of rows) {
    if (!counted(row.action)) continue
    const day = utcDay(row.created_at)
    const key = `${day}\u0000${row.user_id}`
    let s = sums.get(key)
    if (s === undefined) {
      s = { day, userId: row.user_id, executions: 0, failures: 0, toolCalls: 0, cpuMs: 0, wallMs: 0, bytesIn: 0, bytesOut: 0, histogram: emptyHistogram() }
      sums.set(key, s)
    }
    s.executions++
    if (!row.success) s.failures++
    s.toolCalls += row.tool_calls
    s.cpuMs += row.cpu_ms ?? 0
    s.wallMs += row.duration_ms ?? 0
    s.bytesIn += Number(row.bytes_in ?? 0)
    s.bytesOut += Number(row.bytes_out ?? 0)
    if (row.duration_ms !== null) s.histogram[bucketOf(row.duration_ms)]!++
  }
  const ordered = [...sums.values()].sort((a, b) => a.day < b.day ? -1 : a.day > b.day ? 1 : a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0)
  if (ordered.length === 0) return
  // Several rows in one statement: an upsert's rows are locked in the order they come.
  await trx.insertInto('usage_daily').values(ordered.map((s) => ({
    tenant_id: tenantId,
    day: s.day,
    user_id: s.userId,
    executions: s.executions,
    failures: s.failures,
    tool_calls: s.toolCalls,
    cpu_ms: s.cpuMs,
    wall_ms: s.wallMs,
    bytes_in: s.bytesIn,
    bytes_out: s.bytesOut,
    duration_histogram: s.histogram
  }))).onConflict((oc) => oc.columns(['tenant_id', 'day', 'user_id']).doUpdateSet({
    executions: sql`usage_daily.executions + excluded.executions`,
    failures: sql`usage_daily.failures + excluded.failures`,
    tool_calls: sql`usage_daily.tool_calls + excluded.tool_calls`,
    cpu_ms: sql`usage_daily.cpu_ms + excluded.cpu_ms`,
    wall_ms: sql`usage_daily.wall_ms + excluded.wall_ms`,
    bytes_in: sql`usage_daily.bytes_in + excluded.bytes_in`,
    bytes_out: sql`usage_daily.bytes_out + excluded.bytes_out`,
    duration_histogram: sql`(select array_agg(coalesce(x, 0) + coalesce(y, 0) order by i) from unnest(usage_daily.duration_histogram, excluded.duration_histogram) with ordinality as t(x, y, i))`
  })).execute()
}
