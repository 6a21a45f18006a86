// A tenant refused again and again (over its daily quota, as fast as its rate limit allows) gets
// its first refusals of each minute audited and the rest only counted: the audit log, and the
// bounded queue that holds rows in an outage, are shared with every other tenant.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { AuditWriter, type AuditEntry } from '../../services/audit/audit-writer.ts'

const BOUND = 20

async function auditedActions (app: Awaited<ReturnType<typeof buildApp>>, headers: Record<string, string>): Promise<string[]> {
  await app.audit.flush()
  const res = await app.inject({ method: 'GET', url: '/api/audit?limit=500', headers })
  return (res.json() as { entries: Array<{ action: string }> }).entries.map((e) => e.action)
}

const unaudited = async (app: Awaited<ReturnType<typeof buildApp>>): Promise<number> => {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  return Number(/^tenant_enclave_audit_refusals_unaudited_total (\d+)/m.exec(text)?.[1])
}

t.test('over its quota, a tenant\'s refusals are audited up to 20 a minute; another tenant\'s are its own', async (t) => {
  const app = await buildApp(t)
  const flooding = await createTenant(app, 'refusal-flood', { quotaOverrides: { maxExecutionsPerDay: 1 } })
  const other = await createTenant(app, 'refusal-other', { quotaOverrides: { maxExecutionsPerDay: 1 } })
  // Well inside one minute: the bound is per wall-clock minute.
  const toNextMinute = 60_000 - Date.now() % 60_000
  if (toNextMinute < 10_000) await new Promise((resolve) => setTimeout(resolve, toNextMinute + 50))
  const before = await unaudited(app)

  t.equal((await flooding.execute('return 1')).statusCode, 200)
  for (let i = 0; i < BOUND + 5; i++) t.equal((await flooding.execute('return 1')).statusCode, 429)
  t.equal((await other.execute('return 1')).statusCode, 200)
  for (let i = 0; i < 3; i++) t.equal((await other.execute('return 1')).statusCode, 429)

  const actions = await auditedActions(app, flooding.headers)
  t.equal(actions.filter((a) => a === 'code_execution').length, 1, 'the run')
  t.equal(actions.filter((a) => a === 'execution_refused').length, BOUND, 'the first 20 refusals, not 25')
  t.equal(await unaudited(app) - before, 5, 'the other five are counted')
  const others = await auditedActions(app, other.headers)
  t.same(others.filter((a) => a === 'execution_refused').length, 3, 'another tenant\'s refusals are audited: the flood did not use them up')
  // Runs are never bounded: only refusals are.
  t.equal(others.filter((a) => a === 'code_execution').length, 1)
})

t.test('the bound starts again each minute', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'refusal-minutes')
  let now = Date.UTC(2026, 0, 1, 12, 0, 5)
  const seen: Array<[string, boolean]> = []
  const writer = new AuditWriter(app.db, app.log, { maxQueued: 1000, retryDelayMs: 10, batchDelayMs: 1000, refusalsPerTenantPerMinute: 2, now: () => now, onRefusalUnaudited: (tenantId, first) => { seen.push([tenantId, first]) } })
  t.teardown(() => { writer.close() })
  const refusal = (id: string): AuditEntry => ({ tenantId: tenant.tenantId, executionId: id, userId: 'u', action: 'execution_refused', codeSha256: null, success: false, errorCode: 'EXECUTION_QUOTA_EXCEEDED', durationMs: null, toolCalls: 0, createdAt: new Date(now) })
  for (const id of ['a', 'b', 'c', 'd']) writer.enqueue(refusal(id))
  t.equal(writer.pending, 2, 'two of four in the first minute')
  t.same(seen, [[tenant.tenantId, true], [tenant.tenantId, false]], 'the first one past the bound is flagged, for one log line a minute')
  now += 50_000
  writer.enqueue(refusal('e'))
  t.equal(writer.pending, 2, 'still the same minute')
  now += 6_000
  writer.enqueue(refusal('f'))
  writer.enqueue(refusal('g'))
  writer.enqueue(refusal('h'))
  t.equal(writer.pending, 4, 'a new minute: two more')
  writer.enqueue({ ...refusal('run'), action: 'code_execution', success: true, errorCode: null, durationMs: 1 })
  t.equal(writer.pending, 5, 'a run is always audited')
  await writer.flush()
  t.equal(writer.pending, 0)
})
