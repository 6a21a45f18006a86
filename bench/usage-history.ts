// GET /api/usage/history at a 1M-row audit log (issue 30), on the real PostgreSQL: the query it
// ran before the daily rollup (one index-only range scan of audit_log per day, with an exact
// median) against the one it runs now (usage_daily), both under EXPLAIN (ANALYZE, BUFFERS) as
// the app role under RLS. docs/performance.md "Usage history" has the figures.
//
//   DATABASE_URL=... DATABASE_ADMIN_URL=... npm run migrate
//   DATABASE_URL=... DATABASE_ADMIN_URL=... npm run bench:usage-history [-- --reseed]
//
// Seeds once (kept for later runs; --reseed starts again): one tenant with 1M audit rows over
// 120 days from 20 users, and 100 other tenants with 1M rows together, then rolls them up the
// way the migration does and runs VACUUM ANALYZE.
import { Kysely, PostgresDialect, sql, type RawBuilder } from 'kysely'
import pg from 'pg'
import { rollUpAuditLog } from '../migrations/009-usage-rollups.ts'
import { usageHistoryQuery, utcMidnight, DAY_MS } from '../services/audit/usage-history.ts'

const BIG = 'bench-usage-big'
const OTHERS = 100
const ROWS = 1_000_000
const SPAN_DAYS = 120
const USERS = 20
const RUNS = 7
const TARGET_MS = 20

const { DATABASE_URL, DATABASE_ADMIN_URL } = process.env
if (DATABASE_URL === undefined || DATABASE_ADMIN_URL === undefined) {
  console.error('Set DATABASE_URL (the app role) and DATABASE_ADMIN_URL (the tables\' owner) to a migrated PostgreSQL database.')
  process.exit(2)
}
const open = (url: string): Kysely<any> => new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) })
const owner = open(DATABASE_ADMIN_URL)
const app = open(DATABASE_URL)

/** In one transaction set to `tenantId`: RLS (forced, also for the owner) scopes every statement to it. */
async function asTenant<T> (db: Kysely<any>, tenantId: string, fn: (trx: Kysely<any>) => Promise<T>): Promise<T> {
  return await db.transaction().execute(async (trx) => {
    await sql`select set_config('app.tenant_id', ${tenantId}, true)`.execute(trx)
    return await fn(trx)
  })
}

async function seed (tenantId: string, rows: number): Promise<void> {
  await asTenant(owner, tenantId, async (trx) => {
    await sql`delete from usage_daily`.execute(trx)
    await sql`delete from audit_log`.execute(trx)
    // Rows spread evenly over SPAN_DAYS up to now; 3 % failures, durations 1-2000 ms.
    await sql`
      insert into audit_log (tenant_id, execution_id, user_id, action, code_sha256, success, error_code, duration_ms, tool_calls,
                             cpu_ms, peak_heap_bytes, tool_time_ms, bytes_in, bytes_out, created_at)
      select ${tenantId}, 'bench-' || g, 'user-' || (g % ${USERS}), 'code_execution', null, g % 33 <> 0,
             case when g % 33 = 0 then 'EXECUTION_ERROR' end, 1 + (g * 7919) % 2000, g % 5,
             (g * 31) % 200, 1000000, (g * 13) % 100, 100 + g % 400, 50 + g % 900,
             now() - (${SPAN_DAYS} * interval '1 day') * (g::float8 / ${rows})
      from generate_series(1::bigint, ${rows}) as g`.execute(trx)
    await rollUpAuditLog(trx)
  })
}

async function seeded (): Promise<boolean> {
  const result = await asTenant(owner, BIG, async (trx) => await sql<{ n: string }>`select count(*) as n from audit_log`.execute(trx))
  return Number(result.rows[0]?.n ?? 0) >= ROWS
}

// What GET /api/usage/history ran before the rollup (services/audit/usage-history.ts until issue 30).
function auditLogQuery (days: number, now: Date): RawBuilder<unknown> {
  const today = utcMidnight(now)
  const from = new Date(today - (days - 1) * DAY_MS)
  return sql`
    select to_char(d, 'YYYY-MM-DD') as day, s.executions, s.failures, s.tool_calls, s.p50
    from generate_series(${from.toISOString().slice(0, 10)}::timestamp, ${new Date(today).toISOString().slice(0, 10)}::timestamp, interval '1 day') as d
    cross join lateral (
      select count(*) as executions, count(*) filter (where not success) as failures,
             coalesce(sum(tool_calls), 0) as tool_calls, percentile_cont(0.5) within group (order by duration_ms) as p50
      from audit_log
      where action in ('code_execution', 'mcp.execute')
        and created_at >= (d at time zone 'UTC') and created_at < ((d + interval '1 day') at time zone 'UTC')
    ) as s`
}

/** EXPLAIN ANALYZE's Execution Time of `query` as the app role for the big tenant: the median of RUNS (after one warm-up). */
async function measure (query: RawBuilder<unknown>): Promise<{ medianMs: number, minMs: number, maxMs: number, plan: string }> {
  const times: number[] = []
  let plan = ''
  for (let i = 0; i <= RUNS; i++) {
    const rows = await asTenant(app, BIG, async (trx) => (await sql<{ 'QUERY PLAN': string }>`explain (analyze, buffers) ${query}`.execute(trx)).rows)
    plan = rows.map((r) => r['QUERY PLAN']).join('\n')
    const ms = Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1])
    if (i > 0) times.push(ms)
  }
  times.sort((a, b) => a - b)
  return { medianMs: times[Math.floor(times.length / 2)]!, minMs: times[0]!, maxMs: times[times.length - 1]!, plan }
}

if (process.argv.includes('--reseed') || !await seeded()) {
  const started = performance.now()
  console.log(`seeding ${ROWS} audit rows for ${BIG} and ${ROWS} for ${OTHERS} other tenants ...`)
  await seed(BIG, ROWS)
  for (let i = 0; i < OTHERS; i++) await seed(`bench-usage-other-${i}`, ROWS / OTHERS)
  await sql`vacuum analyze audit_log`.execute(owner)
  await sql`vacuum analyze usage_daily`.execute(owner)
  console.log(`seeded in ${((performance.now() - started) / 1000).toFixed(0)} s`)
}

const now = new Date()
const results: Record<string, string | number> = {}
for (const days of [90, 30]) {
  const before = await measure(auditLogQuery(days, now))
  const after = await measure(usageHistoryQuery(days, now))
  const oneUser = await measure(usageHistoryQuery(days, now, { userId: 'user-7' }))
  console.log(`\n${days} days, rollup plan:\n${after.plan}`)
  results[`${days}d audit_log (before) ms`] = before.medianMs
  results[`${days}d usage_daily (after) ms`] = after.medianMs
  results[`${days}d usage_daily one user ms`] = oneUser.medianMs
  results[`${days}d speed-up`] = Math.round(before.medianMs / after.medianMs)
  if (days === 90) results['90d after range ms'] = `${after.minMs}-${after.maxMs}`
}
console.log(`\nGET /api/usage/history at ${ROWS} audit rows for one tenant (${ROWS * 2} in all), EXPLAIN ANALYZE Execution Time, median of ${RUNS}, as the app role under RLS:`)
console.table(results)
const after90 = results['90d usage_daily (after) ms'] as number
console.log(`target: 90 days <= ${TARGET_MS} ms: ${after90 <= TARGET_MS ? 'met' : 'NOT met'} (${after90} ms)`)
await owner.destroy()
await app.destroy()
