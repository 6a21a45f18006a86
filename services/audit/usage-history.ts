import { sql } from 'kysely'
import type { TenantTrx } from '../db/with-tenant.ts'

export interface UsageDay {
  /** The UTC day, YYYY-MM-DD. */
  date: string
  executions: number
  failures: number
  toolCalls: number
  /** Median duration of the day's executions in ms; 0 on a day without any, like the counts. */
  p50DurationMs: number
}

const DAY_MS = 86_400_000

/**
 * The tenant's executions per UTC day for the last `days` days, today included, oldest first;
 * a day without runs is all zeros. Counted from the audit log in SQL, scoped by RLS only (no
 * tenant predicate of our own, so a broken policy could not be masked by one). Refusals are
 * not executions; a failure is a run that did not succeed.
 */
export async function readUsageHistory (trx: TenantTrx, days: number, now = new Date()): Promise<UsageDay[]> {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())
  const from = new Date(today - (days - 1) * DAY_MS)
  // One index range scan per day (generate_series over UTC midnights, as timestamps without a
  // time zone so the session's zone cannot shift them): each day's median sorts only that day's
  // rows in memory, where grouping 90 days at once sorted all of them on disk.
  const result = await sql<{ day: string, executions: string, failures: string, tool_calls: string, p50: number | null }>`
    select to_char(d, 'YYYY-MM-DD') as day, s.executions, s.failures, s.tool_calls, s.p50
    from generate_series(${from.toISOString().slice(0, 10)}::timestamp, ${new Date(today).toISOString().slice(0, 10)}::timestamp, interval '1 day') as d
    cross join lateral (
      select count(*) as executions,
             count(*) filter (where not success) as failures,
             coalesce(sum(tool_calls), 0) as tool_calls,
             percentile_cont(0.5) within group (order by duration_ms) as p50
      from audit_log
      where action in ('code_execution', 'mcp.execute')
        and created_at >= (d at time zone 'UTC') and created_at < ((d + interval '1 day') at time zone 'UTC')
    ) as s`.execute(trx)
  const byDay = new Map(result.rows.map((row) => [row.day, row]))
  const out: UsageDay[] = []
  for (let i = 0; i < days; i++) {
    const date = new Date(from.getTime() + i * DAY_MS).toISOString().slice(0, 10)
    const row = byDay.get(date)
    out.push({
      date,
      executions: Number(row?.executions ?? 0),
      failures: Number(row?.failures ?? 0),
      toolCalls: Number(row?.tool_calls ?? 0),
      p50DurationMs: row?.p50 == null ? 0 : Math.round(Number(row.p50))
    })
  }
  return out
}
