// A tenant's daily limits for each of its end users (perUser), enforced in the same atomic
// admission as the tenant's own quotas: exact under concurrency (embedded, and against real
// Redis when REDIS_URL is set), refused with 429 USER_QUOTA_EXCEEDED naming the limit and its reset.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminHeaders, bearer, buildApp, tokenFor, uniqueTenantId } from '../helper.ts'
import { utcDayWindow } from '../../services/store/index.ts'

const DATA_TOOLS = ['tool:data:query', 'tool:data:insert']

async function putTenant (app: FastifyInstance, tenantId: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenantId}`, headers: adminHeaders(), payload: body })
  if (res.statusCode !== 200) throw new Error(`PUT tenant: ${res.statusCode} ${res.body}`)
  return res.json()
}

function userHeaders (tenantId: string, userId: string): { authorization: string } {
  return bearer(tokenFor({ tenantId, userId, permissions: DATA_TOOLS }))
}

async function execute (app: FastifyInstance, headers: { authorization: string }, code: string, url = '/api/execute') {
  return await app.inject({ method: 'POST', url, headers, payload: { code } })
}

/** The exact 429 body of a user's used-up limit. */
function userRefusal (quota: string, limit: number, unit: string): Record<string, unknown> {
  const reset = utcDayWindow().periodEnd
  return {
    error: `User quota exceeded: this user has used its ${limit} ${unit} for today (perUser.${quota}); it resets at ${reset}`,
    code: 'USER_QUOTA_EXCEEDED',
    limit,
    quota,
    reset
  }
}

t.test('per-user quotas', async (t) => {
  const app = await buildApp(t)

  t.test('the admin sets perUser; the tenant record shows it, and a bad value is a 400', async (t) => {
    const tenantId = uniqueTenantId('pu-admin')
    const stored = await putTenant(app, tenantId, { tier: 'starter', perUser: { executionsPerDay: 5, cpuSecondsPerDay: 60 } })
    t.same(stored.perUser, { executionsPerDay: 5, cpuSecondsPerDay: 60 })
    t.same((await app.inject({ method: 'GET', url: `/admin/tenants/${tenantId}`, headers: adminHeaders() })).json().perUser, { executionsPerDay: 5, cpuSecondsPerDay: 60 })
    const bad = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenantId}`, headers: adminHeaders(), payload: { tier: 'starter', perUser: { executionsPerDay: -1 } } })
    t.equal(bad.statusCode, 400)
    const unknown = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenantId}`, headers: adminHeaders(), payload: { tier: 'starter', perUser: { runsPerDay: 3 } } })
    t.equal(unknown.statusCode, 400, 'an unknown per-user limit is refused, not ignored')
    t.same((await putTenant(app, tenantId, { tier: 'starter' })).perUser, {}, 'a PUT without perUser clears it, as quotaOverrides')
  })

  t.test('50 concurrent runs from 5 users, 4 a day each: exactly 4 per user run, the rest are 429 with the exact body', async (t) => {
    const tenantId = uniqueTenantId('pu-exec')
    await putTenant(app, tenantId, { tier: 'enterprise', quotaOverrides: { maxConcurrentExecutions: 100 }, perUser: { executionsPerDay: 4 } })
    const users = Array.from({ length: 5 }, (_, i) => `user-${i}`)
    const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const userId = users[i % 5] as string
      return { userId, res: await execute(app, userHeaders(tenantId, userId), 'return 1') }
    }))
    for (const userId of users) {
      const mine = results.filter((r) => r.userId === userId)
      t.equal(mine.filter((r) => r.res.statusCode === 200).length, 4, `${userId}: exactly 4 ran`)
      const refused = mine.filter((r) => r.res.statusCode === 429)
      t.equal(refused.length, 6, `${userId}: the other 6 were refused`)
      for (const r of refused) {
        t.same(r.res.json(), userRefusal('executionsPerDay', 4, 'executions'))
        t.ok(Number(r.res.headers['retry-after']) >= 1, 'with Retry-After')
      }
    }
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: userHeaders(tenantId, 'user-0') })).json()
    t.equal(usage.executions, 20, 'the tenant counted exactly the runs that ran')
    await app.audit.flush()
    const audit = (await app.inject({ method: 'GET', url: '/api/audit?limit=100', headers: userHeaders(tenantId, 'user-0') })).json().entries as Array<{ action: string, errorCode: string | null }>
    const refusedRows = audit.filter((e) => e.action === 'execution_refused')
    // Refusals are audited up to 20 per tenant a minute (docs/api.md, Audit).
    t.equal(refusedRows.length, 20, 'refusals are audited, up to the bound')
    t.ok(refusedRows.every((e) => e.errorCode === 'USER_QUOTA_EXCEEDED'), 'with their code')
  })

  t.test('under a tenant limit too: the tenant\'s 15 are never passed and no user passes 4', async (t) => {
    const tenantId = uniqueTenantId('pu-both')
    await putTenant(app, tenantId, { tier: 'enterprise', quotaOverrides: { maxConcurrentExecutions: 100, maxExecutionsPerDay: 15 }, perUser: { executionsPerDay: 4 } })
    const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const userId = `user-${i % 5}`
      return { userId, res: await execute(app, userHeaders(tenantId, userId), 'return 1') }
    }))
    t.equal(results.filter((r) => r.res.statusCode === 200).length, 15, 'exactly the tenant\'s 15')
    for (let u = 0; u < 5; u++) t.ok(results.filter((r) => r.userId === `user-${u}` && r.res.statusCode === 200).length <= 4, `user-${u} ran at most 4`)
    const codes = new Set(results.filter((r) => r.res.statusCode === 429).map((r) => r.res.json().code))
    t.ok([...codes].every((c) => c === 'EXECUTION_QUOTA_EXCEEDED' || c === 'USER_QUOTA_EXCEEDED'), `refusals are the tenant's or the user's (${[...codes].join(', ')})`)
  })

  t.test('a queued submission counts against the user\'s executions too', async (t) => {
    const tenantId = uniqueTenantId('pu-queued')
    await putTenant(app, tenantId, { tier: 'starter', perUser: { executionsPerDay: 2 } })
    const alice = userHeaders(tenantId, 'alice')
    t.equal((await execute(app, alice, 'return 1')).statusCode, 200)
    t.equal((await execute(app, alice, 'return 2', '/api/executions')).statusCode, 202)
    const third = await execute(app, alice, 'return 3', '/api/executions')
    t.equal(third.statusCode, 429)
    t.same(third.json(), userRefusal('executionsPerDay', 2, 'executions'))
    t.equal((await execute(app, userHeaders(tenantId, 'bob'), 'return 1', '/api/executions')).statusCode, 202, 'another user is not held back')
  })

  t.test('toolCallsPerDay: the user\'s calls end the run at the limit, uncatchable; another user still calls', async (t) => {
    const tenantId = uniqueTenantId('pu-tools')
    await putTenant(app, tenantId, { tier: 'starter', perUser: { toolCallsPerDay: 3 } })
    const alice = userHeaders(tenantId, 'alice')
    const over = await execute(app, alice, "let n = 0; for (let i = 0; i < 5; i++) { try { await callTool('data:query', {}); n++ } catch (e) {} } return n")
    const reset = utcDayWindow().periodEnd
    t.same(over.json().error, { name: 'UserQuotaError', code: 'USER_QUOTA_EXCEEDED', message: `User quota exceeded: this user has used its 3 tool calls for today (perUser.toolCallsPerDay); it resets at ${reset}` })
    t.equal(over.json().stats.toolCallCount, 4, 'three calls ran; the fourth ended the run')
    const bob = await execute(app, userHeaders(tenantId, 'bob'), "await callTool('data:query', {}); return 'ok'")
    t.equal(bob.json().value, 'ok')
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: alice })).json()
    t.equal(usage.toolCalls, 4, 'the tenant counted exactly the calls made (3 + 1)')
  })

  t.test('cpuSecondsPerDay: once a user\'s runs have used the budget, that user\'s next run is refused', async (t) => {
    const tenantId = uniqueTenantId('pu-cpu')
    await putTenant(app, tenantId, { tier: 'starter', perUser: { cpuSecondsPerDay: 1 } })
    const alice = userHeaders(tenantId, 'alice')
    // Busy runs until the refusal: the budget is charged from each run's measured CPU, so the
    // refusal must come on the first run after the charges reach 1000 ms, not before, not later.
    let charged = 0
    let refusal
    for (let run = 0; run < 20; run++) {
      const res = await execute(app, alice, 'const end = Date.now() + 400; while (Date.now() < end) {} return 1')
      if (res.statusCode === 429) { refusal = res; break }
      t.ok(charged < 1000, 'admitted only while under the budget')
      charged += res.json().stats.cpuMs as number
    }
    t.ok(charged >= 1000, `refused once ${charged} ms were charged`)
    t.same(refusal?.json(), userRefusal('cpuSecondsPerDay', 1, 'CPU seconds'))
    t.equal((await execute(app, userHeaders(tenantId, 'bob'), 'return 1')).statusCode, 200, 'another user still runs')
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: alice })).json()
    t.ok(usage.cpuMs >= charged, 'the tenant\'s CPU counts every user\'s runs')
  })
})
