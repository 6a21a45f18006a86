// The database flood of issue 28 (item 1), a row of `npm run bench:hostile`: an enterprise
// bystander's one-row data:query, alone and beside four free tenants whose runs keep their
// connections busy with scans of their own documents (as many runs and parallel calls as their
// quotas allow, raised so that, capped per tenant only, they could take the whole pool).
import { sql } from 'kysely'
import { closedLoop, type BenchApp } from './support.ts'
import { withTenant } from '../services/db/with-tenant.ts'

type Execute = (headers: Record<string, string>, code: string, timeoutMs?: number) => Promise<number>
interface Latency { p50: number, p99: number }

const FLOODERS = 4
const RUNS_PER_FLOODER = 3
// Each document ~2 KB: a flooder's scan reads some 10 MB.
const DOCUMENTS = 5000

export async function databaseFlood (bench: BenchApp, execute: Execute, seconds: number): Promise<{ alone: Latency, beside: Latency, floodCalls: number, busy: number, failed: number }> {
  const bystander = await bench.tenant('bench-db-bystander', {}, 'enterprise')
  await execute(bystander, "await callTool('data:insert', { document: { one: 1 } })")
  const probe = "return (await callTool('data:query', { filter: { one: 1 }, limit: 1 })).length"
  const measure = async (): Promise<Latency> => await closedLoop(1, seconds, async () => {
    const status = await execute(bystander, probe)
    if (status !== 200) throw new Error(`the bystander got HTTP ${status}`)
  })
  await closedLoop(1, 1, async () => { await execute(bystander, probe) }) // warm up
  const alone = await measure()

  const flooders = await Promise.all(Array.from({ length: FLOODERS }, async (_, i) => {
    const tenantId = `bench-db-flooder-${i}`
    const headers = await bench.tenant(tenantId, { maxConcurrentExecutions: RUNS_PER_FLOODER, maxToolCallsPerExecution: 1000 }, 'free')
    await withTenant(bench.fastify.db, tenantId, async (trx) => {
      // The same scans each time on a reused database (--real): an earlier run's pad goes first.
      await sql`delete from documents where collection = 'pad'`.execute(trx)
      await sql`insert into documents (tenant_id, collection, body, created_by)
        select ${tenantId}, 'pad', jsonb_build_object('i', g, 'pad', repeat('p', 2000)), 'bench' from generate_series(1, ${DOCUMENTS}) as g`.execute(trx)
    })
    return headers
  }))
  // Scans that match nothing, four at a time (TOOL_MAX_CONCURRENT_PER_RUN), 10 each.
  const floodScript = `let calls = 0, busy = 0, failed = 0
  const one = async () => { for (let i = 0; i < 10; i++) { try { await callTool('data:query', { collection: 'pad', filter: { none: 1 }, limit: 1 }); calls++ } catch (e) { if (/busy/.test(e.message)) busy++; else failed++; if (e.fatal) throw e } } }
  await Promise.all([one(), one(), one(), one()])
  return { calls, busy, failed }`
  const phase = { stop: false }
  const totals = { floodCalls: 0, busy: 0, failed: 0 }
  const running = Promise.all(flooders.flatMap((headers) => Array.from({ length: RUNS_PER_FLOODER }, async () => {
    while (!phase.stop) {
      const res = await fetch(`${bench.url}/api/execute`, { method: 'POST', headers, body: JSON.stringify({ code: floodScript }) })
      const body = await res.json() as { value?: { calls: number, busy: number, failed: number } }
      totals.floodCalls += body.value?.calls ?? 0
      totals.busy += body.value?.busy ?? 0
      totals.failed += body.value?.failed ?? 0
    }
  })))
  await new Promise((resolve) => setTimeout(resolve, 500))
  const beside = await measure()
  phase.stop = true
  await running
  return { alone, beside, ...totals }
}
