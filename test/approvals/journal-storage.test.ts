// A waiting run's record (its journal and job) counts toward its tenant's storage while it is
// kept: GET /api/usage shows its bytes, a document insert past storageBytes sees them, a run
// whose record would pass storageBytes cannot wait (APPROVAL_STORAGE_EXCEEDED), decisions move
// the count by what they add, and every way the record goes (the run's end, its cancel, its
// expiry, retention) frees exactly what it was charged.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { FastifyInstance } from 'fastify'
import { adminHeaders, bearer, buildApp, createTenant, tokenFor, type TestTenant } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { saveJournal } from '../../services/executions/approvals/journal-store.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'
import { expireNow, suspendedRun, twoGatedJournal, waitingRun } from '../support/suspended-runs.ts'
import { waitFor } from '../support/wait-for.ts'

interface Storage { bytes: number, documents: number, limitBytes: number, limitDocuments: number }
const storage = async (app: FastifyInstance, tenant: TestTenant): Promise<Storage> =>
  (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().storage
/** Each kept record's bytes as PostgreSQL measures its JSON text now, and what it was charged. */
async function records (app: FastifyInstance, tenant: TestTenant): Promise<Array<{ charged: number, measured: number }>> {
  const rows = await withTenant(app.db, tenant.tenantId, async (trx) =>
    await sql<{ charged: string, measured: string }>`select bytes as charged, octet_length(journal::text) + octet_length(job::text) as measured from execution_journals order by execution_id`.execute(trx))
  return rows.rows.map((r) => ({ charged: Number(r.charged), measured: Number(r.measured) }))
}
const kept = async (app: FastifyInstance, tenant: TestTenant): Promise<number> => (await records(app, tenant)).reduce((sum, r) => sum + r.charged, 0)
const setQuotas = async (app: FastifyInstance, tenant: TestTenant, quotaOverrides: Record<string, number>): Promise<void> => {
  const res = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}`, headers: adminHeaders(), payload: { tier: 'free', quotaOverrides } })
  if (res.statusCode !== 200) throw new Error(res.body)
}
const insert = async (tenant: TestTenant, text: string) =>
  (await tenant.execute(`return await callTool('data:insert', { document: { text: ${JSON.stringify(text)} } }).then(() => 'inserted', (e) => e.code + ': ' + e.message)`)).json().value as string
const decider = (tenant: TestTenant) => bearer(tokenFor({ tenantId: tenant.tenantId, userId: 'approver', permissions: ['approvals:decide'] }))

t.test('a waiting run\'s record counts toward its tenant\'s storage', async (t) => {
  // The default wait (a day): another file's sweep of its own short waits never reaches these runs.
  const app = await buildApp(t)

  t.test('GET /api/usage counts its bytes while it waits, and not after its cancel', async (t) => {
    const tenant = await createTenant(app, 'jstore-usage', { tier: 'free' })
    const id = await waitingRun(app, tenant)
    const [record] = await records(app, tenant)
    t.ok(record !== undefined && record.charged > 0 && record.charged === record.measured, 'the record is charged what it takes')
    t.same(await storage(app, tenant), { bytes: record?.charged, documents: 0, limitBytes: TIER_QUOTAS.free.storageBytes, limitDocuments: TIER_QUOTAS.free.storageDocuments })
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${id}`, headers: tenant.headers })).statusCode, 202)
    t.equal((await storage(app, tenant)).bytes, 0, 'freed with the record')
  })

  t.test('a document insert past storageBytes sees the waiting records; after they go it fits', async (t) => {
    const tenant = await createTenant(app, 'jstore-insert', { tier: 'free' })
    const id = await waitingRun(app, tenant)
    const charged = await kept(app, tenant)
    // Room for the record and 50 bytes more: a 100-byte document fits only once the record goes.
    await setQuotas(app, tenant, { storageBytes: charged + 50 })
    const text = 'x'.repeat(100)
    t.match(await insert(tenant, text), /^TOOL_ERROR: STORAGE_QUOTA_EXCEEDED: .*storage limit of \d+ bytes/)
    t.equal((await storage(app, tenant)).documents, 0, 'nothing was written')
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${id}`, headers: tenant.headers })).statusCode, 202)
    t.equal(await insert(tenant, text), 'inserted')
  })

  t.test('a run whose record would pass storageBytes cannot wait: APPROVAL_STORAGE_EXCEEDED with the numbers and what to do', async (t) => {
    const tenant = await createTenant(app, 'jstore-full', { tier: 'free' })
    t.equal(await insert(tenant, 'y'.repeat(200)), 'inserted')
    const documents = (await storage(app, tenant)).bytes
    await setQuotas(app, tenant, { storageBytes: documents + 100 })
    const { executionId, waits } = await suspendedRun(app, tenant)
    t.match(waits, { code: 'APPROVAL_STORAGE_EXCEEDED', name: 'ApprovalStorageError' })
    const message = typeof waits === 'string' ? '' : waits.message
    t.match(message, new RegExp(`its record \\(\\d+ bytes\\) would take the tenant past its storage limit of ${documents + 100} bytes \\(${documents} bytes are kept now`))
    t.match(message, /data:delete/)
    t.match(message, /DELETE \/api\/executions\/:id/)
    t.same(await records(app, tenant), [], 'no record kept')
    t.equal((await storage(app, tenant)).bytes, documents, 'nothing charged')
    const view = (await app.inject({ method: 'GET', url: `/api/executions/${executionId}`, headers: tenant.headers })).json()
    t.equal(view.status, 'running', 'not waiting: the worker ends it')
  })

  t.test('decisions move the count by what they add; the resumed run\'s end frees it all', async (t) => {
    const tenant = await createTenant(app, 'jstore-decide', { tier: 'free' })
    const id = await waitingRun(app, tenant)
    const before = await kept(app, tenant)
    const res = await app.inject({ method: 'POST', url: `/api/executions/${id}/approvals`, headers: decider(tenant), payload: { decisions: [{ callId: 'call-1', approve: false, reason: 'r'.repeat(300) }] } })
    t.equal(res.statusCode, 200, res.body)
    const [record] = await records(app, tenant)
    t.ok(record !== undefined && record.charged === record.measured && record.charged > before + 300, 'charged what the row takes now')
    t.equal((await storage(app, tenant)).bytes, record?.charged)
    const last = await app.inject({ method: 'POST', url: `/api/executions/${id}/approvals`, headers: decider(tenant), payload: { approveAll: true } })
    t.equal(last.statusCode, 200, last.body)
    await waitFor(async () => (await records(app, tenant)).length === 0, { message: 'the journal goes with the run', timeout: 30_000 })
    t.equal((await storage(app, tenant)).bytes, 0)
  })

  t.test('expiry and retention free what they delete', async (t) => {
    const tenant = await createTenant(app, 'jstore-expire', { tier: 'free' })
    await expireNow(app, await waitingRun(app, tenant))
    t.equal((await storage(app, tenant)).bytes, 0, 'the expired run\'s record is freed')
    const orphan = randomUUID()
    const job = { executionId: orphan, tenantId: tenant.tenantId, userId: 'runner', permissions: [], code: 'return 1', timeoutMs: 5000 }
    t.equal(await saveJournal(app.db, tenant.tenantId, orphan, { journal: twoGatedJournal(), job, expiresAt: new Date(Date.now() - 2 * 24 * 3600_000) }, TIER_QUOTAS.free.storageBytes), undefined)
    t.ok((await storage(app, tenant)).bytes > 0, 'a record left behind is counted')
    await app.executions.prune(7)
    t.same(await records(app, tenant), [])
    t.equal((await storage(app, tenant)).bytes, 0, 'retention freed it')
  })
})
