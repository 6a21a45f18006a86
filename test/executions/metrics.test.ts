// The execution hooks: a queued run is counted, timed, gauged and audited as a synchronous one is.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant, type TestTenant } from '../helper.ts'
import { rawSession } from '../sessions/fixtures.ts'

async function metricsText (app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`/metrics: ${res.statusCode}`)
  return res.body
}
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}
async function auditOf (app: FastifyInstance, tenant: TestTenant): Promise<Array<{ executionId: string, action: string, errorCode: string | null }>> {
  await app.audit.flush()
  return (await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })).json().entries
}

t.test('a queued run is counted like a synchronous and a session one', async (t) => {
  const app = await buildApp(t, { ENCLAVE_RUNNERS: '1' })
  const tenant = await createTenant(app, 'exec-metrics')
  const ok = 'tenant_enclave_executions_total{code="OK"}'
  const failed = 'tenant_enclave_executions_total{code="EXECUTION_ERROR"}'
  const durations = 'tenant_enclave_execution_duration_seconds_count'
  const inFlight = 'tenant_enclave_executions_in_flight'
  const before = await metricsText(app)

  const submitted = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: 'return 1' } })
  t.equal(submitted.statusCode, 202)
  const { executionId } = submitted.json() as { executionId: string }
  // The stream ends with `final`, which goes out after the run's hooks have heard its end.
  const events = await app.inject({ method: 'GET', url: `/api/executions/${executionId}/events`, headers: { ...tenant.headers, accept: 'application/x-ndjson' } })
  t.match(events.body, /"type":"final"/)

  const queued = await metricsText(app)
  t.equal(sample(queued, ok), sample(before, ok) + 1, 'the queued run is in executions_total')
  t.equal(sample(queued, durations), sample(before, durations) + 1, 'and in the duration histogram')
  t.equal(sample(queued, inFlight), 0, 'the in-flight gauge is back to 0')

  t.equal((await tenant.execute("throw new Error('x')")).statusCode, 200)
  const sync = await metricsText(app)
  t.equal(sample(sync, failed), sample(before, failed) + 1, 'a synchronous run is counted the same way')
  t.equal(sample(sync, durations), sample(before, durations) + 2)
  t.equal(sample(sync, inFlight), 0)

  const session = await rawSession(app, tenant.headers)
  const sealed = await session.execute(session.frame(0, { code: 'return 2' }))
  t.equal(sealed.statusCode, 200)
  t.match(session.open(sealed.json().frame), { success: true, value: 2 })
  const all = await metricsText(app)
  t.equal(sample(all, ok), sample(before, ok) + 2, 'a session run is counted the same way')
  t.equal(sample(all, durations), sample(before, durations) + 3)
  t.equal(sample(all, inFlight), 0)

  const audit = await auditOf(app, tenant)
  t.match(audit.find((e) => e.executionId === executionId), { action: 'code_execution', errorCode: null }, 'the queued run has its one audit row')
  t.equal(audit.filter((e) => e.executionId === executionId).length, 1)
})

t.test('a queued refusal is counted and audited like a synchronous one', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'exec-metrics-refused', { tier: 'free' })
  const series = 'tenant_enclave_quota_refusals_total{kind="code-size"}'
  const before = sample(await metricsText(app), series)
  const big = 'x'.repeat(51 * 1024)
  t.equal((await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: big } })).statusCode, 413)
  t.equal((await tenant.execute(big)).statusCode, 413)
  t.equal(sample(await metricsText(app), series), before + 2)
  const refused = (await auditOf(app, tenant)).filter((e) => e.action === 'execution_refused')
  t.same(refused.map((e) => e.errorCode), ['CODE_TOO_LARGE', 'CODE_TOO_LARGE'])
})
