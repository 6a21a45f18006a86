// The daily rollup (issue 30, item 2) always equals a recount of the audit log: whatever runs,
// refusals, retried rows and batches the writers see, one instance or two writing to one database.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { sql } from 'kysely'
import type { FastifyInstance } from 'fastify'
import { buildApp, sharedApp, uniqueTenantId } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { AuditWriter, type AuditEntry } from '../../services/audit/audit-writer.ts'
import { HISTOGRAM_BOUNDS, HISTOGRAM_BUCKETS } from '../../services/audit/duration-histogram.ts'

const DAY_MS = 86_400_000
const today = Math.floor(Date.now() / DAY_MS) * DAY_MS

/** One generated audit row; `id` repeats on purpose: a retried row must count once. */
const entryArb = fc.record({
  id: fc.integer({ min: 0, max: 40 }),
  user: fc.constantFrom('ann', 'bob', 'cy', 'dé,"x"'),
  daysAgo: fc.integer({ min: 0, max: 3 }),
  // Around midnight too: the day is cut at UTC midnight.
  msOfDay: fc.oneof(fc.constantFrom(0, DAY_MS - 1), fc.integer({ min: 0, max: DAY_MS - 1 })),
  action: fc.constantFrom('code_execution', 'code_execution', 'mcp.execute', 'execution_refused'),
  success: fc.boolean(),
  durationMs: fc.option(fc.integer({ min: 0, max: 400_000 }), { nil: null }),
  toolCalls: fc.integer({ min: 0, max: 20 }),
  meter: fc.option(fc.record({
    cpuMs: fc.integer({ min: 0, max: 5000 }),
    peakHeapBytes: fc.integer({ min: 0, max: 1e8 }),
    toolTimeMs: fc.integer({ min: 0, max: 5000 }),
    bytesIn: fc.integer({ min: 0, max: 1e7 }),
    bytesOut: fc.integer({ min: 0, max: 1e7 })
  }), { nil: undefined }),
  flushAfter: fc.boolean()
})

type Generated = typeof entryArb extends fc.Arbitrary<infer T> ? T : never

function toEntry (tenantId: string, e: Generated): AuditEntry {
  return {
    tenantId,
    executionId: `run-${e.id}`,
    userId: e.user,
    action: e.action as AuditEntry['action'],
    codeSha256: null,
    success: e.success,
    errorCode: e.success ? null : 'EXECUTION_ERROR',
    durationMs: e.durationMs,
    toolCalls: e.toolCalls,
    ...(e.meter !== undefined ? { meter: e.meter } : {}),
    createdAt: new Date(today - e.daysAgo * DAY_MS + e.msOfDay)
  }
}

const SUMS = sql.raw('executions, failures, tool_calls, cpu_ms, wall_ms, bytes_in, bytes_out')

/** The rollup and a recount of the audit log, both as the tenant (RLS), in the same shape. */
async function rollupAndRecount (app: FastifyInstance, tenantId: string): Promise<{ rollup: unknown[], recount: unknown[] }> {
  return await withTenant(app.db, tenantId, async (trx) => {
    const rollup = await sql`select to_char(day, 'YYYY-MM-DD') as day, user_id, ${SUMS}, duration_histogram::text as histogram
      from usage_daily order by 1, 2`.execute(trx)
    const bounds = sql.raw(`array[${HISTOGRAM_BOUNDS.join(',')}]::integer[]`)
    const recount = await sql`
      select to_char((created_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day, user_id,
             count(*)::bigint as executions, count(*) filter (where not success)::bigint as failures,
             coalesce(sum(tool_calls), 0)::bigint as tool_calls, coalesce(sum(cpu_ms), 0)::bigint as cpu_ms,
             coalesce(sum(duration_ms), 0)::bigint as wall_ms, coalesce(sum(bytes_in), 0)::bigint as bytes_in,
             coalesce(sum(bytes_out), 0)::bigint as bytes_out
      from audit_log where action in ('code_execution', 'mcp.execute')
      group by 1, 2 order by 1, 2`.execute(trx)
    // The histogram recounted by PostgreSQL's width_bucket over the same edges (1-based buckets).
    const buckets = await sql<{ day: string, user_id: string, bucket: number, n: string }>`
      select to_char((created_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day, user_id, width_bucket(duration_ms, ${bounds}) as bucket, count(*) as n
      from audit_log where action in ('code_execution', 'mcp.execute') and duration_ms is not null
      group by 1, 2, 3`.execute(trx)
    const histograms = new Map<string, number[]>()
    for (const row of buckets.rows) {
      const key = `${row.day} ${row.user_id}`
      const counts = histograms.get(key) ?? new Array<number>(HISTOGRAM_BUCKETS).fill(0)
      counts[row.bucket - 1] = Number(row.n)
      histograms.set(key, counts)
    }
    const recounted = recount.rows.map((row) => {
      const r = row as { day: string, user_id: string }
      return { ...r, histogram: `{${(histograms.get(`${r.day} ${r.user_id}`) ?? new Array<number>(HISTOGRAM_BUCKETS).fill(0)).join(',')}}` }
    })
    return { rollup: rollup.rows.map(normal), recount: recounted.map(normal) }
  })
}

// Drivers differ in how they hand back bigint (string) and the aggregate's row shape: compare as text.
const normal = (row: unknown): Record<string, string> => Object.fromEntries(Object.entries(row as Record<string, unknown>).map(([k, v]) => [k, String(v)]))

/** Queues a workload's entries on one audit writer, flushing where an entry says so and at the end. */
async function writeAll (writer: Pick<AuditWriter, 'enqueue' | 'flush'>, tenantId: string, workload: Generated[]): Promise<void> {
  for (const e of workload) {
    writer.enqueue(toEntry(tenantId, e))
    if (e.flushAfter) await writer.flush()
  }
  await writer.flush()
}

/** Asserts the tenant's rollups equal a recount of its audit rows, and says whether they did (for fast-check). */
async function equalsRecount (t: Test, app: FastifyInstance, tenantId: string): Promise<boolean> {
  const { rollup, recount } = await rollupAndRecount(app, tenantId)
  t.same(rollup, recount)
  return JSON.stringify(rollup) === JSON.stringify(recount)
}

t.test('rollups equal a recount of the audit log after a random workload', async (t) => {
  const app = await sharedApp()
  await fc.assert(fc.asyncProperty(fc.array(entryArb, { minLength: 1, maxLength: 60 }), async (workload) => {
    const tenantId = uniqueTenantId('rollup-prop')
    await writeAll(app.audit, tenantId, workload)
    return await equalsRecount(t, app, tenantId)
  }), { numRuns: 25 })
})

t.test('two instances writing the same tenant and days: still equal to the recount', async (t) => {
  // On PostgreSQL two whole apps (as two instances would be) on the one database; on PGlite,
  // which one process owns, two audit writers on one database.
  const a = await sharedApp()
  const real = process.env.DATABASE_URL !== undefined
  const b = real ? await buildApp(t) : a
  const writers = [a.audit, real ? b.audit : new AuditWriter(a.db, a.log, { maxQueued: 10_000, retryDelayMs: 10, batchDelayMs: 1 })]
  t.teardown(() => { writers[1]!.close() })
  await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.nat(1), entryArb), { minLength: 2, maxLength: 80 }), async (workload) => {
    const tenantId = uniqueTenantId('rollup-two')
    // Both write at once, batches interleaved; the same execution may reach both (a retry elsewhere).
    await Promise.all([0, 1].map(async (w) => { await writeAll(writers[w]!, tenantId, workload.filter(([writer]) => writer === w).map(([, e]) => e)) }))
    return await equalsRecount(t, a, tenantId)
  }), { numRuns: 15 })
})

t.test('the migration rolls up the audit rows that were there before it', async (t) => {
  const app = await sharedApp()
  const tenantId = uniqueTenantId('rollup-backfill')
  const { rollUpAuditLog } = await import('../../migrations/009-usage-rollups.ts')
  await fc.assert(fc.asyncProperty(fc.array(entryArb, { minLength: 1, maxLength: 40 }), async (workload) => {
    for (const e of workload) app.audit.enqueue(toEntry(tenantId, e))
    await app.audit.flush()
    const live = await rollupAndRecount(app, tenantId)
    // Rebuilt from the audit log as the migration does (scoped here to the tenant by RLS).
    await withTenant(app.db, tenantId, async (trx) => {
      await sql`delete from usage_daily`.execute(trx)
      await rollUpAuditLog(trx)
    })
    const rebuilt = await rollupAndRecount(app, tenantId)
    t.same(rebuilt.rollup, live.rollup)
    return JSON.stringify(rebuilt.rollup) === JSON.stringify(live.recount)
  }), { numRuns: 5 })
})
