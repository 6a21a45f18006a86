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
    sandbox: app.enclave.protections
  })
  // The runners are always confined by the allow-listed environment and Node's permission model;
  // the OS sandbox and the user depend on the machine, and /ready says which applied.
  t.match(ready.json().sandbox, { permissionModel: true, environment: 'allow-list' })
  if (process.getuid?.() === 0) t.equal(ready.json().sandbox.user, 'nobody', 'as root, runners run as nobody')

  const missing = await app.inject({ method: 'GET', url: '/nope' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'NOT_FOUND')
})
