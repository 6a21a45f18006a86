// A run between its starts: waiting for approval (status, list, events, record), decisions
// (permission, tenant, what is pending, the audit), its next start, cancel and expiry. The wait
// is reached through the worker's own suspension step (suspendRun) with a journal as a start
// that stopped at two gated calls leaves it; the replay inside a start has its own tests.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { bearer, buildApp, createTenant, tokenFor, type TestTenant } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import type { QueuedExecutionsDeps } from '../../services/executions/queued-executions.ts'
import { saveJournal } from '../../services/executions/approvals/journal-store.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'
import { waitFor } from '../support/wait-for.ts'
import { auditOf } from '../support/approvals.ts'
import { twoGatedJournal, waitingRun } from '../support/suspended-runs.ts'

const TTL_SECONDS = 600
const depsOf = (app: FastifyInstance): QueuedExecutionsDeps => (app.executions as unknown as { deps: QueuedExecutionsDeps }).deps

async function eventsOf (app: FastifyInstance, tenant: TestTenant, id: string): Promise<StreamEvent[]> {
  // A waiting run's stream does not end: read what is there.
  return await depsOf(app).events.read(id, 0, 100)
}
const get = async (app: FastifyInstance, tenant: TestTenant, id: string) => (await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })).json()
const decide = async (app: FastifyInstance, headers: Record<string, string>, id: string, payload: unknown) =>
  await app.inject({ method: 'POST', url: `/api/executions/${id}/approvals`, headers, payload: payload as Record<string, unknown> })
const deciderOf = (tenant: TestTenant, userId = 'approver'): Record<string, string> => bearer(tokenFor({ tenantId: tenant.tenantId, userId, permissions: ['approvals:decide'] }))
const journalRows = async (app: FastifyInstance, tenant: TestTenant) => await withTenant(app.db, tenant.tenantId, async (trx) => await trx.selectFrom('execution_journals').select('execution_id').execute())

t.test('runs waiting for approval', async (t) => {
  const app = await buildApp(t, { APPROVAL_TTL_SECONDS: String(TTL_SECONDS) })

  t.test('a suspended run: awaiting_approval by id and in the list, its approval_required events out, its journal kept', async (t) => {
    const tenant = await createTenant(app, 'wait-status')
    const id = await waitingRun(app, tenant)
    const view = await get(app, tenant, id)
    t.match(view, { executionId: id, status: 'awaiting_approval', expiresAt: String })
    t.ok(Date.parse(view.expiresAt) > Date.now() + (TTL_SECONDS - 60) * 1000, 'its expiry shows')
    const listed = (await app.inject({ method: 'GET', url: '/api/executions?status=awaiting_approval', headers: tenant.headers })).json() as { executions: Array<{ executionId: string }> }
    t.same(listed.executions.map((e) => e.executionId), [id])
    const none = (await app.inject({ method: 'GET', url: '/api/executions?status=running', headers: tenant.headers })).json() as { executions: unknown[] }
    t.same(none.executions, [])
    const events = await eventsOf(app, tenant, id)
    t.same(events.map((e) => e.type), ['queued', 'approval_required', 'approval_required'])
    t.same(events[1]?.data, { callId: 'call-1', tool: 'data:insert', args: { document: { n: 1 } }, position: 1 })
    t.same((await journalRows(app, tenant)).map((r) => r.execution_id), [id])
    const record = await depsOf(app).records.get(id)
    t.ok(record?.expiresAt !== undefined && Date.parse(record.expiresAt) > Date.now() + (TTL_SECONDS - 60) * 1000, 'it expires APPROVAL_TTL_SECONDS from now')
  })

  t.test('who may decide: 403 without approvals:decide (the run\'s own token too), 404 for another tenant or an unknown id', async (t) => {
    const tenant = await createTenant(app, 'wait-perm')
    const other = await createTenant(app, 'wait-perm-other')
    const id = await waitingRun(app, tenant)
    const own = await decide(app, tenant.headers, id, { approveAll: true })
    t.equal(own.statusCode, 403)
    t.equal(own.json().code, 'FORBIDDEN')
    t.match(own.json().error, /approvals:decide/)
    const foreign = await decide(app, deciderOf(other), id, { approveAll: true })
    t.equal(foreign.statusCode, 404)
    t.equal(foreign.json().code, 'NOT_FOUND')
    t.equal((await decide(app, deciderOf(tenant), randomUUID(), { approveAll: true })).statusCode, 404)
    t.equal((await decide(app, deciderOf(tenant), 'not-a-uuid', { approveAll: true })).statusCode, 404)
    t.equal((await get(app, tenant, id)).status, 'awaiting_approval', 'nothing was decided')
  })

  t.test('bad decisions: a call not pending → 409 naming what is, a call twice or maxCalls without forTool → 400', async (t) => {
    const tenant = await createTenant(app, 'wait-bad')
    const id = await waitingRun(app, tenant)
    const decider = deciderOf(tenant)
    const settled = await decide(app, decider, id, { decisions: [{ callId: 'call-0', approve: true }] })
    t.equal(settled.statusCode, 409)
    t.equal(settled.json().code, 'APPROVAL_NOT_PENDING')
    t.match(settled.json().error, /call-0 is not a pending call.*call-1, call-2/)
    const twice = await decide(app, decider, id, { decisions: [{ callId: 'call-1', approve: true }, { callId: 'call-1', approve: false }] })
    t.equal(twice.statusCode, 400)
    t.match(twice.json().message ?? twice.json().error, /call-1 twice/)
    const grant = await decide(app, decider, id, { approveAll: true, maxCalls: 3 })
    t.equal(grant.statusCode, 400)
    t.match(grant.json().message ?? grant.json().error, /maxCalls needs forTool/)
    t.equal((await decide(app, decider, id, { approveAll: false })).statusCode, 400)
    const neither = await decide(app, decider, id, {})
    t.equal(neither.statusCode, 400)
    t.match(neither.json().message, /decisions: \[\{callId, approve, reason\?\}\] or approveAll: true/)
    const both = await decide(app, decider, id, { approveAll: true, decisions: [{ callId: 'call-1', approve: true }] })
    t.match(both.json(), { code: 'BAD_REQUEST', message: /both decisions and approveAll/ })
    t.equal((await decide(app, decider, id, { decisions: [] })).statusCode, 400)
    t.equal((await decide(app, decider, id, { approveAll: true, forTool: 'data:delete' })).statusCode, 409, 'no call of that tool is pending')
  })

  t.test('decisions one by one: audited with the decider, approval_decided events, and the last one starts the run again', async (t) => {
    const tenant = await createTenant(app, 'wait-decide')
    const id = await waitingRun(app, tenant)
    const first = await decide(app, deciderOf(tenant, 'alice'), id, { decisions: [{ callId: 'call-1', approve: true }] })
    t.equal(first.statusCode, 200, first.body)
    t.match(first.json(), { execution: { executionId: id, status: 'awaiting_approval' } })
    const second = await decide(app, deciderOf(tenant, 'bob'), id, { decisions: [{ callId: 'call-2', approve: false, reason: 'too many' }] })
    t.equal(second.statusCode, 200, second.body)
    t.not(second.json().execution.status, 'awaiting_approval', 'nothing pending: it is queued again')
    const done = await waitFor(async () => { const view = await get(app, tenant, id); return view.status === 'succeeded' ? view : undefined }, { message: 'the resumed run ends' })
    t.equal(done.result.value, 7)
    const audit = await auditOf(app, tenant.headers, id)
    t.match(audit.approvals, [
      { callId: 'call-1', tool: 'data:insert', approve: true, reason: null, decidedBy: 'alice', decidedAt: String },
      { callId: 'call-2', tool: 'data:insert', approve: false, reason: 'too many', decidedBy: 'bob', decidedAt: String }
    ])
    t.equal(audit.approvals.length, 2)
    const events = await eventsOf(app, tenant, id)
    t.same(events.filter((e) => e.type === 'approval_decided').map((e) => e.data), [{ callId: 'call-1', approve: true, by: 'alice' }, { callId: 'call-2', approve: false, by: 'bob' }])
    t.same(events.slice(-2).map((e) => e.type), ['started', 'final'], 'the second start ran after the decisions')
    await waitFor(async () => (await journalRows(app, tenant)).length === 0, { message: 'the journal goes with the run' })
    const again = await decide(app, deciderOf(tenant), id, { approveAll: true })
    t.equal(again.statusCode, 409, 'a finished run has nothing to decide')
  })

  t.test('approveAll with forTool and maxCalls: the pending calls of that tool, and a grant recorded on the journal', async (t) => {
    const tenant = await createTenant(app, 'wait-grant')
    const id = await waitingRun(app, tenant, { code: 'await new Promise(() => {})' })
    const res = await decide(app, deciderOf(tenant, 'carol'), id, { approveAll: true, forTool: 'data:insert', maxCalls: 39 })
    t.equal(res.statusCode, 200, res.body)
    const rows = await withTenant(app.db, tenant.tenantId, async (trx) => await trx.selectFrom('approval_decisions').select(['call_id', 'approve', 'decided_by', 'reason']).orderBy('call_id').execute())
    t.same(rows.map((r) => r.call_id), ['call-1', 'call-2', 'grant-0'])
    t.match(rows[2], { approve: true, decided_by: 'carol', reason: 'up to 39 further calls' })
    const cancel = await app.inject({ method: 'DELETE', url: `/api/executions/${id}`, headers: tenant.headers })
    t.equal(cancel.statusCode, 202)
  })

  t.test('cancel while waiting: at once, CANCELLED, no journal left, nothing to decide after', async (t) => {
    const tenant = await createTenant(app, 'wait-cancel')
    const id = await waitingRun(app, tenant)
    const res = await app.inject({ method: 'DELETE', url: `/api/executions/${id}`, headers: tenant.headers })
    t.equal(res.statusCode, 202)
    const view = await get(app, tenant, id)
    t.equal(view.status, 'cancelled')
    t.equal(view.result.error.code, 'CANCELLED')
    t.equal((await eventsOf(app, tenant, id)).at(-1)?.type, 'final')
    t.same(await journalRows(app, tenant), [])
    t.equal((await decide(app, deciderOf(tenant), id, { approveAll: true })).statusCode, 409)
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${id}`, headers: tenant.headers })).statusCode, 409)
  })

  t.test('nobody decides: the sweep past APPROVAL_TTL_SECONDS ends it APPROVAL_EXPIRED (not before)', async (t) => {
    const tenant = await createTenant(app, 'wait-expire')
    const id = await waitingRun(app, tenant)
    await app.executions.sweep(Date.now() + (TTL_SECONDS - 60) * 1000)
    t.equal((await get(app, tenant, id)).status, 'awaiting_approval', 'not yet')
    await app.executions.sweep(Date.now() + (TTL_SECONDS + 1) * 1000)
    const view = await get(app, tenant, id)
    t.equal(view.status, 'failed')
    t.equal(view.result.error.code, 'APPROVAL_EXPIRED')
    t.match(view.result.error.message, /600 s \(APPROVAL_TTL_SECONDS\)/)
    const final = (await eventsOf(app, tenant, id)).at(-1)
    t.equal(final?.type, 'final')
    t.same(await journalRows(app, tenant), [])
    const row = await waitFor(async () => await withTenant(app.db, tenant.tenantId, async (trx) => await trx.selectFrom('executions').select(['status']).where('execution_id', '=', id).executeTakeFirst()), { message: 'the row is written' })
    t.equal(row?.status, 'failed')
    t.match((await auditOf(app, tenant.headers, id)).entry, { errorCode: 'APPROVAL_EXPIRED' })
  })

  t.test('retention deletes a journal left behind (its run long past its expiry), never a waiting run\'s', async (t) => {
    const tenant = await createTenant(app, 'wait-orphan')
    const waiting = await waitingRun(app, tenant)
    const orphan = randomUUID()
    const job = { executionId: orphan, tenantId: tenant.tenantId, userId: 'runner', permissions: [], code: 'return 1', timeoutMs: 5000 }
    await saveJournal(app.db, tenant.tenantId, orphan, { journal: twoGatedJournal(), job, expiresAt: new Date(Date.now() - 2 * 24 * 3600_000) }, TIER_QUOTAS.free.storageBytes)
    await app.executions.prune(7)
    t.same((await journalRows(app, tenant)).map((r) => r.execution_id), [waiting])
    t.equal((await get(app, tenant, waiting)).status, 'awaiting_approval')
  })
})
