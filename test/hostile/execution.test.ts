// Hostile tenants through the HTTP API (real PostgreSQL + Redis in CI): what one tenant's crash or
// runaway script costs the others, in quota, audit and concurrency.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'

t.test('hostile executions through the API', async (t) => {
  const app = await buildApp(t, { ENCLAVE_RUNNERS: '2' })
  await app.enclave.ready()

  t.test('a run killed with its runner after a tool call: RUNNER_CRASHED, audited with its calls, not charged', async (t) => {
    const victim = await createTenant(app, 'victim', { tier: 'starter' })
    const pending = victim.execute("await callTool('data:query', {})\nlet x = 0\nwhile (true) x++", { timeoutMs: 20_000 })
    const deadline = Date.now() + 10_000
    // The victim is in its loop once its tool call is done and it is the one run in flight.
    while (Date.now() < deadline) {
      const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: victim.headers })).json()
      if (usage.toolCalls === 1) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
    for (const pid of app.enclave.runnerPids()) if (pid !== undefined) process.kill(pid, 'SIGKILL')
    const res = await pending
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.error.code, 'RUNNER_CRASHED')
    t.equal(body.error.name, 'RunnerCrashedError')
    t.equal(body.stats.toolCallCount, 1, 'its real call count')
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: victim.headers })).json()
    t.equal(usage.executions, 0, 'the execution was given back')
    t.equal(usage.concurrentExecutions, 0)
    let entry: { errorCode: string, toolCalls: number } | undefined
    while (Date.now() < deadline + 5000 && entry === undefined) {
      const audit = (await app.inject({ method: 'GET', url: '/api/audit', headers: victim.headers })).json()
      entry = audit.entries?.find((e: { action: string }) => e.action === 'code_execution')
      if (entry === undefined) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.match(entry, { errorCode: 'RUNNER_CRASHED', toolCalls: 1 }, 'audited with its real call count')
    // The same victim without a tool call is retried: its run simply succeeds.
    const retried = victim.execute('let x = 0\nfor (let i = 0; i < 2e8; i++) x = (x + i) % 7\nreturn x', { timeoutMs: 20_000 })
    await new Promise((resolve) => setTimeout(resolve, 150))
    for (const pid of app.enclave.runnerPids()) if (pid !== undefined) process.kill(pid, 'SIGKILL')
    t.equal((await retried).json().success, true, 'retried on a fresh runner')
  })

  t.test('a TIMEOUT whose work V8 cannot stop keeps the tenant\'s slot until its CPU is free', async (t) => {
    const tenant = await createTenant(app, 'sorter', { tier: 'starter', quotaOverrides: { maxConcurrentExecutions: 1 } })
    const res = await tenant.execute("const big = 'a'.repeat(2**20); const a = []; const N = 100000; for (let i = 0; i < N; i++) a.push(big.slice((i*7919) % N)); a.sort()", { timeoutMs: 1500 })
    t.equal(res.json().error.code, 'TIMEOUT')
    const during = (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json()
    t.equal(during.concurrentExecutions, 1, 'still counted while its thread runs')
    const refused = await tenant.execute('return 1')
    t.equal(refused.statusCode, 429, 'its one slot is still taken')
    const deadline = Date.now() + 5000
    let after = during
    while (after.concurrentExecutions !== 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      after = (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json()
    }
    t.equal(after.concurrentExecutions, 0, 'freed once the runner holding the thread was stopped')
    t.equal((await tenant.execute('return 1')).json().value, 1)
  })
})
