// Two app processes on the same PostgreSQL and Redis keep one truth. Needs the real servers
// (.ci/run starts them): with the embedded defaults each instance would have its own state.
import t from 'tap'
import { adminHeaders, bearer, tokenFor, uniqueTenantId } from '../helper.ts'
import { startServer } from '../support/server-process.ts'
import { call, HAS_SHARED_SERVERS, startTwoInstances } from '../support/two-instances.ts'
import { waitFor } from '../support/wait-for.ts'

if (HAS_SHARED_SERVERS) {
  t.test('two instances, one truth', async (t) => {
    const env = { ENCLAVE_RUNNERS: '1', RATE_LIMIT_PER_MINUTE: '100000' }
    const [a, b] = await startTwoInstances(t, env)
    const admin = adminHeaders()
    const newTenant = async (label: string, quotaOverrides: Record<string, number>): Promise<{ tenantId: string, headers: Record<string, string> }> => {
      const tenantId = uniqueTenantId(label)
      const put = await call(a, 'PUT', `/admin/tenants/${tenantId}`, admin, { tier: 'starter', quotaOverrides })
      t.equal(put.status, 200)
      return { tenantId, headers: bearer(tokenFor({ tenantId, permissions: ['tool:data:query'] })) }
    }

    t.test('60 parallel executions split across both against a quota of 30: exactly 30', async (t) => {
      const tenant = await newTenant('two-quota', { maxExecutionsPerDay: 30, maxConcurrentExecutions: 100 })
      const results = await Promise.all(Array.from({ length: 60 }, async (_, i) =>
        await call(i % 2 === 0 ? a : b, 'POST', '/api/execute', tenant.headers, { code: 'return 1' })))
      t.equal(results.filter((r) => r.status === 200).length, 30)
      t.equal(results.filter((r) => r.status === 429).length, 30)
    })

    t.test('a concurrency limit of 2 holds across both', async (t) => {
      const tenant = await newTenant('two-conc', { maxConcurrentExecutions: 2 })
      const slow = { code: 'await new Promise(() => {})', timeoutMs: 4000 }
      const running = [call(a, 'POST', '/api/execute', tenant.headers, slow), call(b, 'POST', '/api/execute', tenant.headers, slow)]
      // Both hold their slot (either instance's usage shows the shared count) before the others arrive.
      await waitFor(async () => (await call(b, 'GET', '/api/usage', tenant.headers)).json.concurrentExecutions === 2,
        { timeout: 3000, message: 'both slow runs hold their slot' })
      const third = await Promise.all([call(a, 'POST', '/api/execute', tenant.headers, { code: 'return 1' }), call(b, 'POST', '/api/execute', tenant.headers, { code: 'return 1' })])
      t.same(third.map((r) => r.status), [429, 429])
      for (const r of await Promise.all(running)) t.equal(r.json.error.code, 'TIMEOUT')
    })

    t.test('a registry change through one instance is seen by the other at once (pub/sub)', async (t) => {
      const tenant = await newTenant('two-registry', {})
      const before = await call(b, 'GET', '/api/tools', tenant.headers)
      t.equal(before.json.tools.find((tool: { name: string }) => tool.name === 'data:query').enabled, true, 'B has it cached as enabled')
      const started = Date.now()
      t.equal((await call(a, 'PUT', `/admin/tenants/${tenant.tenantId}/tools/data:query`, admin, { enabled: false })).status, 200)
      await waitFor(async () => (await call(b, 'GET', '/api/tools', tenant.headers)).json.tools.find((tool: { name: string }) => tool.name === 'data:query').enabled === false,
        { timeout: 5000, message: 'B sees data:query disabled' })
      const seenAfter = Date.now() - started
      t.ok(seenAfter < 1000, `B saw the change after ${seenAfter} ms (bound: 1 s by pub/sub; TENANT_CACHE_TTL_MS if a notice is lost)`)
      const run = await call(b, 'POST', '/api/execute', tenant.headers, { code: "try { await callTool('data:query', {}) } catch (e) { return e.code }" })
      t.equal(run.json.value, 'TOOL_DISABLED')
    })

    t.test('a SIGKILLed instance frees its concurrency slot when the lease ends', async (t) => {
      const victim = await startServer(env, (fn) => { t.teardown(fn) })
      const tenant = await newTenant('two-kill', { maxConcurrentExecutions: 1, maxExecutionDurationMs: 2000 })
      void call(victim, 'POST', '/api/execute', tenant.headers, { code: 'await new Promise(() => {})' }).catch(() => {})
      await waitFor(async () => (await call(b, 'GET', '/api/usage', tenant.headers)).json.concurrentExecutions === 1,
        { timeout: 3000, message: 'the victim\'s run holds the slot' })
      victim.child.kill('SIGKILL')
      const killedAt = Date.now()
      t.equal((await call(b, 'POST', '/api/execute', tenant.headers, { code: 'return 1' })).status, 429, 'the dead instance\'s slot is still leased')
      await waitFor(async () => (await call(b, 'POST', '/api/execute', tenant.headers, { code: 'return 1' })).status === 200,
        { timeout: 15_000, interval: 250, message: 'the dead instance\'s slot is freed' })
      const freedAfter = Date.now() - killedAt
      // The lease (2 s run + 5 s margin) started at admission, just before the kill; the rest is polling slack.
      t.ok(freedAfter <= 9000, `slot freed ${freedAfter} ms after the kill (lease: 2 s run + 5 s margin)`)
    })
  })
}
