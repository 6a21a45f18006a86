import t from 'tap'
import { buildApp } from './helper.ts'

t.test('health and readiness', async (t) => {
  const app = await buildApp(t)
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })

  const ready = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), {
    status: 'ready',
    checks: { database: 'ok', redis: process.env.REDIS_URL === undefined ? 'in-process' : 'ok' },
    runners: ready.json().runners
  })
  // What confines the runners is reported, whatever this machine allows.
  t.match(ready.json().runners, { permissionModel: true, environment: 'allow-list', user: /^(nobody|service user)$/, network: /^(none|host)$/, filesystem: /^(read-only|host)$/ })

  const missing = await app.inject({ method: 'GET', url: '/nope' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'NOT_FOUND')
})
