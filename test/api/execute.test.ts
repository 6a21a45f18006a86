import t from 'tap'
import { buildApp, createTenant, bearer, tokenFor } from '../helper.ts'

t.test('POST /api/execute', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'exec')

  t.test('runs a script and returns an ExecutionResult', async (t) => {
    const res = await tenant.execute("console.log('hi', 1); return { sum: 1 + 1 }")
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.match(body, { success: true, value: { sum: 2 }, logs: [{ level: 'log', message: 'hi 1' }], stats: { toolCallCount: 0 } })
    t.match(body.executionId, /^[0-9a-f-]{36}$/)
    t.type(body.stats.duration, 'number')
  })

  t.test('a failing script is still a 200, with the error', async (t) => {
    const res = await tenant.execute("throw new Error('boom')")
    t.equal(res.statusCode, 200)
    t.match(res.json(), { success: false, error: { code: 'EXECUTION_ERROR', message: /boom/ } })
  })

  t.test('a syntax error is VALIDATION_ERROR', async (t) => {
    const res = await tenant.execute('return (')
    t.equal(res.statusCode, 200)
    t.equal(res.json().error.code, 'VALIDATION_ERROR')
  })

  t.test('bad bodies are 400 with a message', async (t) => {
    const usage = async () => (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().executions
    const before = await usage()
    const bodies: unknown[] = [{}, { code: 1 }, { code: 'return 1', extra: true }, { code: 'return 1', timeoutMs: 0 }, { code: 'return 1', timeoutMs: 'soon' }, { code: 'return 1', timeoutMs: 1.5 }, 'return 1', null]
    for (const payload of bodies) {
      const res = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
      t.equal(res.statusCode, 400, JSON.stringify(payload))
      t.type(res.json().message, 'string')
    }
    const malformed = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': 'application/json' }, payload: '{"code":' })
    t.equal(malformed.statusCode, 400)
    t.equal(await usage(), before, 'bad requests consumed no quota')
  })

  t.test('code: "" is a 400, as on POST /api/executions and in a session frame (one body schema)', async (t) => {
    const res = await tenant.execute('')
    t.equal(res.statusCode, 400)
    t.match(res.json(), { error: 'Bad Request', code: 'BAD_REQUEST', message: 'code must not be empty' })
  })

  t.test('401 without or with a bad token', async (t) => {
    const none = await app.inject({ method: 'POST', url: '/api/execute', payload: { code: 'return 1' } })
    t.equal(none.statusCode, 401)
    t.equal(none.json().code, 'MISSING_TOKEN')
    const bad = await app.inject({ method: 'POST', url: '/api/execute', headers: bearer(tokenFor({ tenantId: 'x' }, -1)), payload: { code: 'return 1' } })
    t.equal(bad.statusCode, 401)
    t.match(bad.json(), { code: 'INVALID_TOKEN', reason: 'expired' })
  })

  t.test('timeoutMs lowers the tier limit but never raises it', async (t) => {
    const lowered = await tenant.execute('await new Promise(() => {})', { timeoutMs: 200 })
    t.equal(lowered.json().error.code, 'TIMEOUT')
    t.ok(lowered.json().stats.duration < 4000, `ended near 200 ms (${lowered.json().stats.duration} ms)`)

    const short = await createTenant(app, 'short', { quotaOverrides: { maxExecutionDurationMs: 300 } })
    const raised = await short.execute('await new Promise(() => {})', { timeoutMs: 60_000 })
    t.equal(raised.json().error.code, 'TIMEOUT')
    t.ok(raised.json().stats.duration < 10_000, `the tier's 300 ms held, not 60 s (${raised.json().stats.duration} ms)`)
  })
})

t.test('503 when Redis is unreachable; /health stays up', async (t) => {
  const app = await buildApp(t, { REDIS_URL: 'redis://127.0.0.1:1' })
  const tenant = await createTenant(app, 'no-redis')
  const res = await tenant.execute('return 1')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { error: 'Service unavailable', code: 'DEPENDENCY_UNAVAILABLE' })
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  const ready = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json().checks.redis, 'unreachable')
})
