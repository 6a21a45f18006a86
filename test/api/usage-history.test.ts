import t from 'tap'
import { auditEntry, createTenant, sharedApp } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { readUsageHistory } from '../../services/audit/usage-history.ts'
import type { AuditEntry } from '../../services/audit/audit-writer.ts'

const DAY_MS = 86_400_000

// Each test reads, or writes rows of its own tenant: the file's tests share one app (sharedApp).
t.test('GET /api/usage/history counts runs per UTC day, zeros on empty days, only the caller\'s tenant', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'history')
  const other = await createTenant(app, 'history-other')
  // Noon two days ago: the same UTC day whatever the hour of the test.
  const twoDaysAgo = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - 2 * DAY_MS + DAY_MS / 2)
  const row = (tenantId: string, id: string, fields: Partial<AuditEntry>): AuditEntry => ({ ...auditEntry(tenantId, id, twoDaysAgo), ...fields })
  app.audit.enqueue(row(tenant.tenantId, 'h1', { durationMs: 10, toolCalls: 2 }))
  app.audit.enqueue(row(tenant.tenantId, 'h2', { durationMs: 30, toolCalls: 1, success: false, errorCode: 'EXECUTION_ERROR' }))
  app.audit.enqueue(row(tenant.tenantId, 'h3', { durationMs: 20 }))
  // A refusal is not an execution.
  app.audit.enqueue(row(tenant.tenantId, 'h4', { action: 'execution_refused', success: false, errorCode: 'EXECUTION_QUOTA_EXCEEDED', durationMs: null }))
  // Another tenant's runs on the same day never count.
  for (let i = 0; i < 5; i++) app.audit.enqueue(row(other.tenantId, `o${i}`, { durationMs: 1000, toolCalls: 7, success: false }))
  await app.audit.flush()

  const res = await app.inject({ method: 'GET', url: '/api/usage/history?days=7', headers: tenant.headers })
  t.equal(res.statusCode, 200)
  const { days } = res.json() as { days: Array<{ date: string, executions: number, failures: number, toolCalls: number, p50DurationMs: number }> }
  const zero = { cpuMs: 0, wallMs: 0, bytesIn: 0, bytesOut: 0 }
  t.equal(days.length, 7)
  t.equal(days[6]?.date, new Date().toISOString().slice(0, 10), 'the last day is today (UTC)')
  t.same(days.map((d) => d.date), [...days.map((d) => d.date)].sort(), 'oldest first')
  const date = twoDaysAgo.toISOString().slice(0, 10)
  // The median comes from the rollup's histogram: the middle of 20 ms's bucket [16, 23), 19 ms.
  t.same(days.find((d) => d.date === date), { date, executions: 3, failures: 1, toolCalls: 3, ...zero, wallMs: 60, p50DurationMs: 19 })
  for (const day of days.filter((d) => d.date !== date)) {
    t.same(day, { date: day.date, executions: 0, failures: 0, toolCalls: 0, ...zero, p50DurationMs: 0 }, `${day.date} is all zeros`)
  }

  const otherDays = (await app.inject({ method: 'GET', url: '/api/usage/history?days=7', headers: other.headers })).json().days
  // 1000 ms lies in the bucket [724, 1024): its middle is 861 ms, within the ±19 % the field promises.
  t.match(otherDays.find((d: { date: string }) => d.date === date), { executions: 5, failures: 5, toolCalls: 35, wallMs: 5000, p50DurationMs: 861 })

  const defaults = (await app.inject({ method: 'GET', url: '/api/usage/history', headers: tenant.headers })).json()
  t.equal(defaults.days.length, 30, '30 days unless `days` says otherwise')
  t.equal((await app.inject({ method: 'GET', url: '/api/usage/history?days=90', headers: tenant.headers })).json().days.length, 90)
})

t.test('bad `days` is a 400, no token a 401', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'history-bad')
  for (const days of ['0', '91', '-1', 'abc', '', '1e9']) {
    const res = await app.inject({ method: 'GET', url: `/api/usage/history?days=${days}`, headers: tenant.headers })
    t.equal(res.statusCode, 400, `days=${days}`)
    t.equal(res.json().code, 'BAD_REQUEST', `days=${days}`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/api/usage/history?days=3&x=1', headers: tenant.headers })).statusCode, 400, 'unknown parameter')
  const anonymous = await app.inject({ method: 'GET', url: '/api/usage/history' })
  t.equal(anonymous.statusCode, 401)
  t.same(anonymous.json(), { error: 'No bearer token was sent: send the header Authorization: Bearer <token>', code: 'MISSING_TOKEN' })
})

t.test('days are cut at UTC midnight', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'history-utc')
  const now = new Date('2026-03-10T08:00:00.000Z')
  const at = (iso: string, id: string) => auditEntry(tenant.tenantId, id, new Date(iso))
  app.audit.enqueue(at('2026-03-07T23:59:59.999Z', 'before-window'))
  app.audit.enqueue(at('2026-03-08T00:00:00.000Z', 'first-instant'))
  app.audit.enqueue(at('2026-03-08T23:59:59.999Z', 'last-instant'))
  app.audit.enqueue(at('2026-03-09T00:00:00.000Z', 'next-day'))
  app.audit.enqueue(at('2026-03-10T23:59:59.999Z', 'end-of-today'))
  app.audit.enqueue(at('2026-03-11T00:00:00.000Z', 'tomorrow'))
  await app.audit.flush()
  const days = await withTenant(app.db, tenant.tenantId, async (trx) => await readUsageHistory(trx, 3, now))
  t.same(days.map((d) => [d.date, d.executions]), [['2026-03-08', 2], ['2026-03-09', 1], ['2026-03-10', 1]])
  // Without a tenant set, RLS shows nothing at all.
  const none = await withTenant(app.db, '', async (trx) => await readUsageHistory(trx, 3, now))
  t.same(none.map((d) => d.executions), [0, 0, 0])
})
