// GET /api/executions filtered on the server: status, a submittedAt range and the outcome code,
// paged with before; bad values are 400 with the allowed values in the message.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant, type TestTenant } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'

interface Page { executions: Array<{ executionId: string, status: string, result?: { error?: { code: string } } }>, nextBefore: string | null }

async function list (app: FastifyInstance, tenant: TestTenant, query: string) {
  return await app.inject({ method: 'GET', url: `/api/executions?${query}`, headers: tenant.headers })
}

t.test('list filters', async (t) => {
  const app = await buildApp(t)
  await app.enclave.ready()
  const tenant = await createTenant(app, 'list-filter', { tier: 'starter' })
  const ids: string[] = []
  for (const code of ['return 1', 'throw new Error("no")', 'return 2']) {
    const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code } })
    ids.push(res.json().executionId)
  }
  await waitFor(async () => ((await list(app, tenant, 'limit=10')).json() as Page).executions.every((e) => e.status !== 'queued' && e.status !== 'running' && e.result !== undefined), { message: 'all ended' })
  // The rows are written just after the finals: the code filter reads rows.
  await waitFor(async () => ((await list(app, tenant, 'code=OK')).json() as Page).executions.length === 2, { message: 'rows written' })

  t.test('by outcome code and status', async (t) => {
    const ok = (await list(app, tenant, 'code=OK')).json() as Page
    t.same(ok.executions.map((e) => e.executionId).sort(), [ids[0], ids[2]].sort())
    const failed = (await list(app, tenant, 'code=EXECUTION_ERROR')).json() as Page
    t.same(failed.executions.map((e) => e.executionId), [ids[1]])
    t.same(((await list(app, tenant, 'status=failed')).json() as Page).executions.map((e) => e.executionId), [ids[1]])
    t.same(((await list(app, tenant, 'code=TIMEOUT')).json() as Page).executions, [])
  })

  t.test('by submittedAt: dates and date-times', async (t) => {
    const today = new Date().toISOString().slice(0, 10)
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
    t.equal(((await list(app, tenant, `from=${today}`)).json() as Page).executions.length, 3)
    t.equal(((await list(app, tenant, `to=${today}`)).json() as Page).executions.length, 3, 'a date as `to` includes that day')
    t.equal(((await list(app, tenant, `from=${tomorrow}`)).json() as Page).executions.length, 0)
    t.equal(((await list(app, tenant, `to=${yesterday}`)).json() as Page).executions.length, 0)
    const soon = new Date(Date.now() + 60_000).toISOString()
    t.equal(((await list(app, tenant, `from=${yesterday}&to=${encodeURIComponent(soon)}&code=OK`)).json() as Page).executions.length, 2)
  })

  t.test('paged with before, the filter kept', async (t) => {
    const first = (await list(app, tenant, 'code=OK&limit=1')).json() as Page
    t.equal(first.executions.length, 1)
    t.equal(first.executions[0]?.executionId, ids[2], 'newest first')
    t.not(first.nextBefore, null)
    const second = (await list(app, tenant, `code=OK&limit=1&before=${first.nextBefore}`)).json() as Page
    t.same(second.executions.map((e) => e.executionId), [ids[0]])
    const third = (await list(app, tenant, `code=OK&limit=1&before=${second.nextBefore}`)).json() as Page
    t.same(third.executions, [])
    t.equal(third.nextBefore, null)
  })

  t.test('bad values: 400 naming what is allowed', async (t) => {
    const status = await list(app, tenant, 'status=done')
    t.equal(status.statusCode, 400)
    t.match(status.json(), { code: 'BAD_REQUEST', message: "query parameter 'status' must be one of: queued, running, awaiting_approval, succeeded, failed, cancelled" })
    const code = await list(app, tenant, 'code=BOOM')
    t.equal(code.statusCode, 400)
    t.match(code.json().message, /code must be OK or an execution error code: .*TIMEOUT.*CANCELLED/)
    for (const query of ['from=yesterday', 'to=2026-13-45', 'from=2026-12-07T10:00']) {
      const res = await list(app, tenant, query)
      t.equal(res.statusCode, 400, query)
      t.match(res.json().message, /must be an ISO date \(2026-12-07\) or date-time/)
    }
    t.match((await list(app, tenant, 'from=2026-12-08&to=2026-12-07')).json(), { code: 'BAD_REQUEST', message: /from must be before to/ })
  })
})
