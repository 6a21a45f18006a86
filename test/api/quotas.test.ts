// Each of the eight quotas at its boundary: N admitted, N+1 refused.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'

t.test('quotas at their boundaries', async (t) => {
  const app = await buildApp(t)

  t.test('maxExecutionsPerDay: 3 run, the 4th is 429 with Retry-After and reset', async (t) => {
    const tenant = await createTenant(app, 'q-exec', { quotaOverrides: { maxExecutionsPerDay: 3 } })
    for (let i = 0; i < 3; i++) t.equal((await tenant.execute('return 1')).statusCode, 200)
    const refused = await tenant.execute('return 1')
    t.equal(refused.statusCode, 429)
    t.match(refused.json(), { error: 'Execution quota exceeded', limit: 3 })
    const reset = new Date(refused.json().reset)
    t.equal(reset.getUTCHours() + reset.getUTCMinutes() + reset.getUTCSeconds(), 0, 'resets at UTC midnight')
    t.ok(Number(refused.headers['retry-after']) >= 1)
    const usage = await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })
    t.equal(usage.json().executions, 3, 'the refused request consumed nothing')
  })

  t.test('60 parallel requests against a quota of 30 admit exactly 30', async (t) => {
    const tenant = await createTenant(app, 'q-race', { quotaOverrides: { maxExecutionsPerDay: 30, maxConcurrentExecutions: 100 } })
    const results = await Promise.all(Array.from({ length: 60 }, async () => await tenant.execute('return 1')))
    t.equal(results.filter((r) => r.statusCode === 200).length, 30)
    t.equal(results.filter((r) => r.statusCode === 429).length, 30)
  })

  t.test('maxConcurrentExecutions: 2 run at once, a 3rd is 429', async (t) => {
    const tenant = await createTenant(app, 'q-conc', { quotaOverrides: { maxConcurrentExecutions: 2 } })
    const slow = [tenant.execute('await new Promise(() => {})', { timeoutMs: 4000 }), tenant.execute('await new Promise(() => {})', { timeoutMs: 4000 })]
    // Both hold their slot (usage shows it) before the third arrives.
    await waitFor(async () => (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().concurrentExecutions === 2,
      { timeout: 3000, message: 'both slow runs hold their slot' })
    const third = await tenant.execute('return 1')
    t.equal(third.statusCode, 429)
    t.same(third.json(), { error: 'Concurrent execution limit exceeded', code: 'CONCURRENCY_LIMIT_EXCEEDED', limit: 2 })
    for (const res of await Promise.all(slow)) t.equal(res.json().error.code, 'TIMEOUT')
    t.equal((await tenant.execute('return 1')).statusCode, 200, 'slots are free again')
  })

  t.test('maxExecutionDurationMs', async (t) => {
    const tenant = await createTenant(app, 'q-time', { quotaOverrides: { maxExecutionDurationMs: 400 } })
    t.equal((await tenant.execute('let x = 0; for (let i = 0; i < 1e5; i++) x += i; return x')).json().success, true)
    const spin = await tenant.execute('while (true) {}')
    t.equal(spin.json().error.code, 'TIMEOUT')
  })

  t.test('maxToolCallsPerExecution: 3 calls pass, the 4th ends the run and cannot be caught', async (t) => {
    const tenant = await createTenant(app, 'q-calls', { quotaOverrides: { maxToolCallsPerExecution: 3 } })
    const ok = await tenant.execute("for (let i = 0; i < 3; i++) await callTool('data:query', {}); return 'done'")
    t.match(ok.json(), { success: true, value: 'done', stats: { toolCallCount: 3 } })
    const over = await tenant.execute("for (let i = 0; i < 4; i++) { try { await callTool('data:query', {}) } catch (e) {} } return 'escaped'")
    t.match(over.json(), { success: false, error: { code: 'MAX_TOOL_CALLS' } })
  })

  t.test('maxToolCallsPerDay: 5 calls today, the 6th is TOOL_QUOTA_EXCEEDED', async (t) => {
    const tenant = await createTenant(app, 'q-daily', { quotaOverrides: { maxToolCallsPerDay: 5 } })
    const first = await tenant.execute("for (let i = 0; i < 5; i++) await callTool('data:query', {}); return 'ok'")
    t.equal(first.json().value, 'ok')
    const next = await tenant.execute("try { await callTool('data:query', {}) } catch (e) { return 'caught' }")
    t.match(next.json(), { success: false, error: { code: 'TOOL_QUOTA_EXCEEDED' } })
    const usage = await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })
    t.equal(usage.json().toolCalls, 5)
  })

  t.test('maxMemoryMB: a small heap is fine, a bomb is MEMORY_LIMIT_EXCEEDED', async (t) => {
    const tenant = await createTenant(app, 'q-mem', { quotaOverrides: { maxMemoryMB: 16 } })
    const small = await tenant.execute('const a = new Array(100000).fill(1); return a.length')
    t.equal(small.json().value, 100000)
    const bomb = await tenant.execute("const keep = []; while (true) keep.push('x'.repeat(1024) + keep.length)")
    t.equal(bomb.json().error.code, 'MEMORY_LIMIT_EXCEEDED')
  })

  t.test('maxCodeSizeKB counts UTF-8 bytes: 1024 pass, 1025 is 413', async (t) => {
    const tenant = await createTenant(app, 'q-code', { quotaOverrides: { maxCodeSizeKB: 1 } })
    const padded = (bytes: number): string => 'return 1//' + 'x'.repeat(bytes - 10)
    t.equal((await tenant.execute(padded(1024))).statusCode, 200)
    const over = await tenant.execute(padded(1025))
    t.equal(over.statusCode, 413)
    t.match(over.json(), { limit: 1 })
    // 400 characters, 1200 bytes: the limit is on bytes, not characters.
    const multibyte = await tenant.execute('return 1//' + '€'.repeat(400))
    t.equal(multibyte.statusCode, 413)
  })

  t.test('maxOutputSizeKB: a value under it passes, one over is OUTPUT_LIMIT_EXCEEDED', async (t) => {
    const tenant = await createTenant(app, 'q-out', { quotaOverrides: { maxOutputSizeKB: 1 } })
    t.equal((await tenant.execute("return 'x'.repeat(900)")).json().success, true)
    const over = await tenant.execute("return 'x'.repeat(2000)")
    t.equal(over.json().error.code, 'OUTPUT_LIMIT_EXCEEDED')
    const logs = await tenant.execute("for (let i = 0; i < 100; i++) console.log('y'.repeat(50)); return 1")
    t.equal(logs.json().error.code, 'OUTPUT_LIMIT_EXCEEDED', 'logs count toward the output limit')
  })
})
