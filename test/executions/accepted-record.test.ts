// A queued run's acceptance is its record (Redis, or memory when embedded), not its PostgreSQL
// row, which the worker writes once the run has ended: an accepted id is readable, listed and
// cancellable before its row exists, a submission is answered while PostgreSQL is away, and the
// row is written once it is back. Idempotency keys hold on the record.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant, type TestTenant } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { getExecution } from '../../services/executions/execution-repository.ts'
import type { QueuedExecutionsDeps } from '../../services/executions/queued-executions.ts'
import { appBehindPostgresProxy } from '../support/postgres-outage.ts'
import { waitFor } from '../support/wait-for.ts'

const depsOf = (app: FastifyInstance): QueuedExecutionsDeps => (app.executions as unknown as { deps: QueuedExecutionsDeps }).deps

async function submit (app: FastifyInstance, tenant: TestTenant, code: string, headers: Record<string, string> = {}): Promise<{ statusCode: number, executionId: string, status: string }> {
  const res = await app.inject({ method: 'POST', url: '/api/executions', headers: { ...tenant.headers, ...headers }, payload: { code } })
  return { statusCode: res.statusCode, ...(res.json() as { executionId: string, status: string }) }
}
async function view (app: FastifyInstance, tenant: TestTenant, id: string): Promise<{ statusCode: number, body: { status?: string, result?: { value?: unknown }, code?: string } }> {
  const res = await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })
  return { statusCode: res.statusCode, body: res.json() }
}
async function listed (app: FastifyInstance, tenant: TestTenant, query = ''): Promise<Array<{ executionId: string, status: string }>> {
  const res = await app.inject({ method: 'GET', url: `/api/executions${query}`, headers: tenant.headers })
  if (res.statusCode !== 200) throw new Error(`list: ${res.statusCode} ${res.body}`)
  return (res.json() as { executions: Array<{ executionId: string, status: string }> }).executions
}
/** Reads the run's events to its end (the stream ends after `final`). */
async function untilFinal (app: FastifyInstance, tenant: TestTenant, id: string): Promise<string[]> {
  const res = await app.inject({ method: 'GET', url: `/api/executions/${id}/events`, headers: { ...tenant.headers, accept: 'application/x-ndjson' } })
  return res.body.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { type: string }).type)
}
async function rowOf (app: FastifyInstance, tenant: TestTenant, id: string): Promise<{ status: string, idempotency_key: string | null, request_sha256: string | null } | undefined> {
  return await withTenant(app.db, tenant.tenantId, async (trx) => await getExecution(trx, id))
}

t.test('an accepted run before its row', async (t) => {
  const app = await buildApp(t, { ENCLAVE_RUNNERS: '1' })

  t.test('queued behind a busy slot: GET, the list and DELETE read its record; no row is written for it until it ends', async (t) => {
    const tenant = await createTenant(app, 'rec-queued', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 100, maxExecutionDurationMs: 20_000 } })
    const busy = await submit(app, tenant, 'while (true) {}')
    await waitFor(async () => (await view(app, tenant, busy.executionId)).body.status === 'running', { message: 'the first run holds the one slot' })
    const waiting = await submit(app, tenant, 'return "never"')
    t.equal(waiting.statusCode, 202)
    t.equal(await rowOf(app, tenant, waiting.executionId), undefined, 'no row yet')
    t.equal(await rowOf(app, tenant, busy.executionId), undefined, 'nor for the running one')
    t.match(await view(app, tenant, waiting.executionId), { statusCode: 200, body: { status: 'queued' } })
    t.same((await listed(app, tenant)).map((e) => [e.executionId, e.status]), [[waiting.executionId, 'queued'], [busy.executionId, 'running']], 'newest first, from their records')
    t.same((await listed(app, tenant, '?status=queued')).map((e) => e.executionId), [waiting.executionId])
    t.same((await listed(app, tenant, `?limit=1&before=${waiting.executionId}`)).map((e) => e.executionId), [busy.executionId], 'a record is a cursor too')
    const other = await createTenant(app, 'rec-other')
    t.equal((await view(app, other, waiting.executionId)).statusCode, 404, 'another tenant: 404, record or not')
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${waiting.executionId}`, headers: other.headers })).statusCode, 404)

    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${waiting.executionId}`, headers: tenant.headers })).statusCode, 202)
    t.same(await untilFinal(app, tenant, waiting.executionId), ['queued', 'final'])
    t.equal((await view(app, tenant, waiting.executionId)).body.status, 'cancelled')
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${busy.executionId}`, headers: tenant.headers })).statusCode, 202)
    t.equal((await untilFinal(app, tenant, busy.executionId)).at(-1), 'final')
    await waitFor(async () => (await rowOf(app, tenant, waiting.executionId))?.status === 'cancelled', { message: 'the cancelled run\'s row' })
    await waitFor(async () => (await rowOf(app, tenant, busy.executionId))?.status === 'cancelled', { message: 'the cancelled running run\'s row' })
    t.same((await listed(app, tenant)).map((e) => [e.executionId, e.status]), [[waiting.executionId, 'cancelled'], [busy.executionId, 'cancelled']], 'the same list from the rows')
  })

  t.test('ended while its row cannot be written: read from its record, then stored by the sweep once the database answers', async (t) => {
    const tenant = await createTenant(app, 'rec-unstored')
    const { db } = depsOf(app)
    const { simpleQuery } = db
    t.teardown(() => { db.simpleQuery = simpleQuery })
    // The database refuses the row as an unreachable PostgreSQL does (embedded: PGlite cannot be cut).
    db.simpleQuery = async (text, ...rest) => {
      if (text.includes('insert into "executions"')) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
      return await simpleQuery.call(db, text, ...rest)
    }
    const run = await submit(app, tenant, 'return 42')
    t.equal(run.statusCode, 202)
    t.same(await untilFinal(app, tenant, run.executionId), ['queued', 'started', 'final'])
    t.match(await view(app, tenant, run.executionId), { statusCode: 200, body: { status: 'succeeded', result: { value: 42 } } })
    t.same((await listed(app, tenant)).map((e) => [e.executionId, e.status]), [[run.executionId, 'succeeded']])
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${run.executionId}`, headers: tenant.headers })).statusCode, 409)
    t.equal(await rowOf(app, tenant, run.executionId), undefined, 'no row while the database refuses it')
    db.simpleQuery = simpleQuery
    await waitFor(async () => (await rowOf(app, tenant, run.executionId))?.status === 'succeeded', { timeout: 15_000, message: 'the sweep stores the run' })
    t.same(await depsOf(app).records.unstored(tenant.tenantId), [], 'the record is no longer waiting for its row')
    t.same((await listed(app, tenant)).map((e) => [e.executionId, e.status]), [[run.executionId, 'succeeded']], 'listed once')
  })

  t.test('idempotency keys hold on the record, and the row keeps the key and the request hash', async (t) => {
    const tenant = await createTenant(app, 'rec-idem')
    const headers = { 'idempotency-key': 'invoice-1' }
    const first = await submit(app, tenant, 'return 1', headers)
    t.equal(first.statusCode, 202)
    const again = await submit(app, tenant, 'return 1', headers)
    t.equal(again.executionId, first.executionId, 'the first run, before its row exists')
    await untilFinal(app, tenant, first.executionId)
    const row = await waitFor(async () => await rowOf(app, tenant, first.executionId), { message: 'the row' })
    t.equal(row?.idempotency_key, 'invoice-1')
    t.match(row?.request_sha256, /^[0-9a-f]{64}$/)
    t.same(await submit(app, tenant, 'return 1', headers), { statusCode: 202, executionId: first.executionId, status: 'succeeded' })
    const reused = await app.inject({ method: 'POST', url: '/api/executions', headers: { ...tenant.headers, ...headers }, payload: { code: 'return 2' } })
    t.equal(reused.statusCode, 422)
    t.match(reused.json(), { code: 'IDEMPOTENCY_KEY_REUSED' })
  })
})

const { DATABASE_URL } = process.env
if (DATABASE_URL !== undefined) {
  t.test('PostgreSQL unreachable: a submission is accepted and runs, and its row is written once PostgreSQL is back', async (t) => {
    const { proxy, app, tenant } = await appBehindPostgresProxy(t, DATABASE_URL, 'rec-pg-out')

    await proxy.down()
    const run = await submit(app, tenant, 'return 7')
    t.equal(run.statusCode, 202, 'accepted with PostgreSQL away')
    t.same(await untilFinal(app, tenant, run.executionId), ['queued', 'started', 'final'])
    t.match(await view(app, tenant, run.executionId), { statusCode: 200, body: { status: 'succeeded', result: { value: 7 } } })
    const queuedThenCancelled = await submit(app, tenant, 'while (true) {}')
    t.equal(queuedThenCancelled.statusCode, 202)
    await waitFor(async () => (await view(app, tenant, queuedThenCancelled.executionId)).body.status === 'running', { message: 'running' })
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${queuedThenCancelled.executionId}`, headers: tenant.headers })).statusCode, 202, 'cancelled with PostgreSQL away')
    t.equal((await untilFinal(app, tenant, queuedThenCancelled.executionId)).at(-1), 'final')

    await proxy.up()
    await waitFor(async () => (await rowOf(app, tenant, run.executionId).catch(() => undefined))?.status === 'succeeded', { timeout: 20_000, interval: 200, message: 'the run is stored once PostgreSQL is back' })
    await waitFor(async () => (await rowOf(app, tenant, queuedThenCancelled.executionId).catch(() => undefined))?.status === 'cancelled', { timeout: 20_000, interval: 200, message: 'and the cancelled one' })
    t.same((await listed(app, tenant)).map((e) => [e.executionId, e.status]), [[queuedThenCancelled.executionId, 'cancelled'], [run.executionId, 'succeeded']], 'each listed once')
  })
}
