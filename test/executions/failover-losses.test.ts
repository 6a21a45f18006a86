// What a Redis failover can take with it (the promoted replica lacks the last writes, async
// replication), and what a worker does then: a job that comes back after its run started here is
// not run again, even when the run's record says queued again; a run whose record is gone ends
// failed with its code (and is not charged) instead of staying invisible for good.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant, type TestTenant } from '../helper.ts'
import type { QueuedExecutionsDeps } from '../../services/executions/queued-executions.ts'
import { LOST_RECORD_REASON } from '../../services/executions/lost-records.ts'
import { waitFor } from '../support/wait-for.ts'

const depsOf = (app: FastifyInstance): QueuedExecutionsDeps => (app.executions as unknown as { deps: QueuedExecutionsDeps }).deps

async function submit (app: FastifyInstance, tenant: TestTenant, code: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code, timeoutMs: 20_000 } })
  if (res.statusCode !== 202) throw new Error(`submit: ${res.statusCode} ${res.body}`)
  return (res.json() as { executionId: string }).executionId
}
type View = { status?: string, result?: { success: boolean, error?: { code: string, message: string } } }
async function view (app: FastifyInstance, tenant: TestTenant, id: string): Promise<View> {
  return (await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })).json() as View
}
async function executionsToday (app: FastifyInstance, tenant: TestTenant): Promise<number> {
  return (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().executions as number
}

t.test('a failover\'s losses', async (t) => {
  const app = await buildApp(t, { ENCLAVE_RUNNERS: '1' })

  t.test('a run whose record was lost while it waited for a slot ends failed, and is not charged', async (t) => {
    const tenant = await createTenant(app, 'lost-record', { tier: 'free', quotaOverrides: { maxConcurrentExecutions: 1, maxExecutionsPerDay: 100, maxExecutionDurationMs: 20_000 } })
    const before = await executionsToday(app, tenant)
    const busy = await submit(app, tenant, 'while (true) {}')
    await waitFor(async () => (await view(app, tenant, busy)).status === 'running', { message: 'the first run runs' })
    const waiting = await submit(app, tenant, 'return 2')
    const record = await depsOf(app).records.get(waiting)
    t.equal(record?.status, 'queued', 'the second waits for the slot')
    // As if the node holding its record failed over before the record reached the replica.
    await depsOf(app).records.forget(record!)
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${busy}`, headers: tenant.headers })).statusCode, 202)
    const ended = await waitFor(async () => { const v = await view(app, tenant, waiting); return v.status === 'failed' ? v : undefined }, { message: 'the run without a record ends' }) as View
    t.equal(ended.result?.error?.code, 'INTERNAL_ERROR', 'failed with a code')
    t.equal(ended.result?.error?.message, LOST_RECORD_REASON, 'that says what happened')
    // The execution is given back right after the run's end is written (only the party whose end
    // stood gives it back), so a read just after `failed` can come before it: wait for it.
    t.ok(await waitFor(async () => await executionsToday(app, tenant) - before === 1, { message: 'the lost run\'s execution is given back' }), 'only the first run counts today')
  })

  t.test('a job that comes back after its run started here is not run again, though its record says queued', async (t) => {
    const tenant = await createTenant(app, 'back-again', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 100 } })
    const id = await submit(app, tenant, 'return 3')
    await waitFor(async () => (await view(app, tenant, id)).status === 'succeeded', { message: 'the run succeeds' })
    const ran = await depsOf(app).records.get(id)
    // The promoted replica lacked the record's last moves: it says queued, and the job is back.
    await depsOf(app).records.move(id, ['succeeded'], { status: 'queued' })
    const outcome = await app.executions.runJob({ executionId: id, tenantId: tenant.tenantId, userId: ran!.userId, permissions: [], code: 'return 3', timeoutMs: ran!.timeoutMs })
    t.same(outcome, { done: true }, 'the job is done with')
    const after = await depsOf(app).records.get(id)
    t.equal(after?.status, 'queued', 'the record was not moved to running again')
    t.equal(after?.startedAt, ran?.startedAt, 'the run did not start again')
  })
})
