// How many of a tenant's runs may wait for approval at once (its tier's maxWaitingRuns): a run
// past it cannot wait (APPROVAL_WAIT_LIMIT, nothing kept), places are taken atomically by runs
// suspending together, and a place goes back by every way a waiting run stops waiting: its
// resume, its cancel, its expiry, a refusal after the place was taken, and its record's end.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { bearer, buildApp, createTenant, tokenFor, type TestTenant } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { createMemoryStore, StoreUnavailableError } from '../../services/store/index.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'
import { waitingRecordTtlMs } from '../../services/executions/approvals/waiting-runs.ts'
import { waitingRuns } from '../../services/executions/approvals/waiting-places.ts'
import { depsOf } from '../support/approvals.ts'
import { expireNow, suspendedRun, waitingRun } from '../support/suspended-runs.ts'

const bounded = async (app: FastifyInstance, label: string, maxWaitingRuns: number, more: Record<string, number> = {}): Promise<TestTenant> =>
  await createTenant(app, label, { tier: 'free', quotaOverrides: { maxWaitingRuns, ...more } })
const waiting = async (app: FastifyInstance, tenant: TestTenant): Promise<number> => await waitingRuns(depsOf(app), tenant.tenantId)
const journalIds = async (app: FastifyInstance, tenant: TestTenant): Promise<string[]> =>
  (await withTenant(app.db, tenant.tenantId, async (trx) => await trx.selectFrom('execution_journals').select('execution_id').execute())).map((r) => r.execution_id).sort()
const status = async (app: FastifyInstance, tenant: TestTenant, id: string): Promise<string> =>
  (await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })).json().status
const decideAll = async (app: FastifyInstance, tenant: TestTenant, id: string) =>
  await app.inject({ method: 'POST', url: `/api/executions/${id}/approvals`, headers: bearer(tokenFor({ tenantId: tenant.tenantId, userId: 'approver', permissions: ['approvals:decide'] })), payload: { approveAll: true } })

t.test('runs waiting for approval at once, per tier', async (t) => {
  // The default wait (a day): another file's sweep of its own short waits never reaches these runs.
  const app = await buildApp(t)

  t.test('tiers: free 5, starter 50, enterprise 1000, and GET /api/usage shows the tenant\'s bound', async (t) => {
    t.same([TIER_QUOTAS.free.maxWaitingRuns, TIER_QUOTAS.starter.maxWaitingRuns, TIER_QUOTAS.enterprise.maxWaitingRuns], [5, 50, 1000])
    const tenant = await createTenant(app, 'bound-usage', { tier: 'free' })
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json()
    t.match(usage.quotas, { maxWaitingRuns: 5, maxJournalBytes: 1024 * 1024 })
  })

  t.test('past maxWaitingRuns a run cannot wait: APPROVAL_WAIT_LIMIT with how many wait, the limit and what to do; nothing kept', async (t) => {
    const tenant = await bounded(app, 'bound-limit', 2)
    const first = await waitingRun(app, tenant)
    const second = await waitingRun(app, tenant)
    const third = await suspendedRun(app, tenant)
    t.match(third.waits, { code: 'APPROVAL_WAIT_LIMIT', name: 'ApprovalWaitLimitError' })
    const message = typeof third.waits === 'string' ? '' : third.waits.message
    t.match(message, /2 runs of this tenant already wait, and its tier allows 2 at once \(maxWaitingRuns\)/)
    t.match(message, /POST \/api\/executions\/:id\/approvals/)
    t.match(message, /DELETE \/api\/executions\/:id/)
    t.same(await journalIds(app, tenant), [first, second].sort(), 'the refused run kept no journal')
    t.equal(await status(app, tenant, third.executionId), 'running', 'its record was not moved: the worker ends it')
    t.equal(await waiting(app, tenant), 2)
    t.equal((await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().waitingRuns, 2, 'GET /api/usage shows how many wait')
    const other = await bounded(app, 'bound-limit-other', 2)
    await waitingRun(app, other)
    t.equal(await waiting(app, other), 1, 'another tenant has places of its own')
  })

  t.test('runs suspending together never take more places than there are', async (t) => {
    const tenant = await bounded(app, 'bound-race', 3)
    const outcomes = await Promise.all(Array.from({ length: 8 }, async () => await suspendedRun(app, tenant)))
    const waited = outcomes.filter((o) => o.waits === 'waiting')
    t.equal(waited.length, 3, 'exactly the bound waits')
    t.same(outcomes.filter((o) => o.waits !== 'waiting').map((o) => typeof o.waits === 'string' ? o.waits : o.waits.code), Array(5).fill('APPROVAL_WAIT_LIMIT'))
    t.same(await journalIds(app, tenant), waited.map((o) => o.executionId).sort())
    t.equal(await waiting(app, tenant), 3)
  })

  t.test('a resumed run gives its place back (a run that waits again takes one of its own)', async (t) => {
    const tenant = await bounded(app, 'bound-resume', 1)
    const id = await waitingRun(app, tenant)
    t.match((await suspendedRun(app, tenant)).waits, { code: 'APPROVAL_WAIT_LIMIT' })
    const decided = await decideAll(app, tenant, id)
    t.equal(decided.statusCode, 200, decided.body)
    t.equal(await waiting(app, tenant), 0, 'queued again: no place held')
    await waitingRun(app, tenant)
    t.equal(await waiting(app, tenant), 1)
  })

  t.test('a resume the queue refuses: 503, and the run waits again, still counted', async (t) => {
    const tenant = await bounded(app, 'bound-requeue', 1)
    const id = await waitingRun(app, tenant)
    const queue = depsOf(app).queue
    const add = queue.add
    queue.add = async () => { throw new StoreUnavailableError('the queue is away') }
    const res = await decideAll(app, tenant, id).finally(() => { queue.add = add })
    t.equal(res.statusCode, 503)
    t.equal(await status(app, tenant, id), 'awaiting_approval')
    t.equal(await waiting(app, tenant), 1)
    t.match((await suspendedRun(app, tenant)).waits, { code: 'APPROVAL_WAIT_LIMIT' })
  })

  t.test('a cancelled waiting run gives its place back', async (t) => {
    const tenant = await bounded(app, 'bound-cancel', 1)
    const id = await waitingRun(app, tenant)
    const res = await app.inject({ method: 'DELETE', url: `/api/executions/${id}`, headers: tenant.headers })
    t.equal(res.statusCode, 202)
    t.equal(await waiting(app, tenant), 0)
    await waitingRun(app, tenant)
  })

  t.test('an expired waiting run gives its place back', async (t) => {
    const tenant = await bounded(app, 'bound-expire', 1)
    const id = await waitingRun(app, tenant)
    await expireNow(app, id)
    t.equal(await status(app, tenant, id), 'failed')
    t.equal(await waiting(app, tenant), 0)
    await waitingRun(app, tenant)
  })

  t.test('a run that cannot wait for another reason holds no place: its storage refused, or it ended meanwhile', async (t) => {
    const tenant = await bounded(app, 'bound-refused', 1, { storageBytes: 10 })
    t.match((await suspendedRun(app, tenant)).waits, { code: 'APPROVAL_STORAGE_EXCEEDED' })
    t.equal(await waiting(app, tenant), 0)
    // Another party moved the run's record before it could wait (a cancel while it stopped).
    const roomy = await bounded(app, 'bound-gone', 1)
    const ended = await suspendedRun(app, roomy, { running: false })
    t.equal(ended.waits, 'gone')
    t.equal(await waiting(app, roomy), 0)
    t.same(await journalIds(app, roomy), [], 'its journal went too')
    t.equal((await app.inject({ method: 'GET', url: '/api/usage', headers: roomy.headers })).json().storage.bytes, 0, 'and the storage it took')
  })

  t.test('a place lives no longer than the waiting run\'s record: a run whose record is gone frees it', async (t) => {
    // On fake time: the record and the place both end waitingRecordTtlMs after the run waits.
    let now = Date.now()
    const deps = { ...depsOf(app), store: createMemoryStore({ now: () => now }) }
    const tenant = await bounded(app, 'bound-record', 1)
    await waitingRun(app, tenant, { deps })
    t.match((await suspendedRun(app, tenant, { deps })).waits, { code: 'APPROVAL_WAIT_LIMIT' })
    now += waitingRecordTtlMs(deps) - 1000
    t.equal(await waitingRuns(deps, tenant.tenantId), 1, 'held while its record may still be there')
    now += 2000
    t.equal(await waitingRuns(deps, tenant.tenantId), 0, 'freed with its record')
    t.equal((await suspendedRun(app, tenant, { deps })).waits, 'waiting')
  })
})
