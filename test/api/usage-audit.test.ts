import t from 'tap'
import { createHash, randomUUID } from 'node:crypto'
import { auditEntry, createTenant, sharedApp } from '../helper.ts'

// Each test reads, or writes rows of its own tenants: the file's tests share one app (sharedApp).
t.test('usage and audit match what ran', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'usage', { tier: 'starter', quotaOverrides: { maxExecutionsPerDay: 4 } })
  const other = await createTenant(app, 'usage-other')

  const scripts = ["await callTool('data:query', {}); await callTool('data:query', {}); return 1", "throw new Error('x')", "return await callTool('data:query', {})", 'return 2']
  const results: Array<{ executionId: string }> = []
  for (const code of scripts) results.push((await tenant.execute(code)).json())
  const refused = await tenant.execute('return 5')
  t.equal(refused.statusCode, 429)
  await other.execute('return 1')

  const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json()
  t.match(usage, { tenantId: tenant.tenantId, tier: 'starter', executions: 4, toolCalls: 3, concurrentExecutions: 0, quotas: { maxExecutionsPerDay: 4 } })
  t.ok(Date.parse(usage.periodEnd) - Date.parse(usage.periodStart) === 86_400_000)

  await app.audit.flush()
  const audit = (await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })).json()
  t.equal(audit.entries.length, 5, 'four runs and one refusal')
  const [refusal, ...runs] = audit.entries
  t.match(refusal, { action: 'execution_refused', success: false, errorCode: 'EXECUTION_QUOTA_EXCEEDED', toolCalls: 0 })
  t.same(runs.map((e: { executionId: string }) => e.executionId), results.map((r) => r.executionId).reverse(), 'newest first')
  t.match(runs[3], {
    action: 'code_execution',
    success: true,
    errorCode: null,
    toolCalls: 2,
    userId: 'usage-user',
    codeSha256: createHash('sha256').update(scripts[0] as string).digest('hex')
  })
  t.match(runs[2], { success: false, errorCode: 'EXECUTION_ERROR' })

  const page1 = (await app.inject({ method: 'GET', url: '/api/audit?limit=2', headers: tenant.headers })).json()
  t.equal(page1.entries.length, 2)
  const page2 = (await app.inject({ method: 'GET', url: `/api/audit?limit=2&before=${page1.nextBefore as string}`, headers: tenant.headers })).json()
  t.same([...page1.entries, ...page2.entries].map((e: { id: string }) => e.id), audit.entries.slice(0, 4).map((e: { id: string }) => e.id))

  const bad = await app.inject({ method: 'GET', url: '/api/audit?limit=0', headers: tenant.headers })
  t.equal(bad.statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: '/api/audit?before=1;drop', headers: tenant.headers })).statusCode, 400)

  const otherAudit = (await app.inject({ method: 'GET', url: '/api/audit', headers: other.headers })).json()
  t.equal(otherAudit.entries.length, 1, 'the other tenant sees only its own entry')
  t.notOk(otherAudit.entries.some((e: { executionId: string }) => results.some((r) => r.executionId === e.executionId)))
})

t.test('audit entries are listed by when they happened, even when written late', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'audit-late')
  const entry = (executionId: string, createdAt: Date) => auditEntry(tenant.tenantId, executionId, createdAt)
  // As after an outage: the older row reaches the database after the newer one.
  app.audit.enqueue(entry('newer', new Date()))
  await app.audit.flush()
  app.audit.enqueue(entry('older', new Date(Date.now() - 60_000)))
  await app.audit.flush()
  const all = (await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })).json().entries as Array<{ id: string, executionId: string }>
  t.same(all.map((e) => e.executionId), ['newer', 'older'])
  const page = (await app.inject({ method: 'GET', url: `/api/audit?limit=1&before=${all[0]?.id as string}`, headers: tenant.headers })).json()
  t.same(page.entries.map((e: { executionId: string }) => e.executionId), ['older'])
  const none = (await app.inject({ method: 'GET', url: `/api/audit?before=${randomUUID()}`, headers: tenant.headers })).json()
  t.same(none.entries, [], 'an unknown cursor lists nothing')
})
