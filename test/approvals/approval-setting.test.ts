import t from 'tap'
import { adminHeaders, buildApp, createTenant } from '../helper.ts'
import { rawSession } from '../sessions/fixtures.ts'
import { waitFor } from '../support/wait-for.ts'

// The approval setting: the platform's default on a tool, a tenant's override, and runs that
// cannot wait for a decision (POST /api/execute) ending with APPROVAL_REQUIRED, while a queued run waits.
t.test('approval setting', async (t) => {
  const upstream = 'http://127.0.0.1:9'
  const app = await buildApp(t, { TOOL_UPSTREAMS: upstream })
  const admin = adminHeaders()

  t.test('a tenant override: fields left out keep what is stored; null returns to the default', async (t) => {
    const tenant = await createTenant(app, 'appr-set')
    const url = `/admin/tenants/${tenant.tenantId}/tools/data:insert`
    const first = await app.inject({ method: 'PUT', url, headers: admin, payload: { approval: 'always' } })
    t.equal(first.statusCode, 200, first.body)
    t.match(first.json(), { tool: 'data:insert', enabled: true, rateLimit: null, config: {}, approval: 'always' })
    const second = await app.inject({ method: 'PUT', url, headers: admin, payload: { rateLimit: { calls: 5, windowMs: 1000 } } })
    t.match(second.json(), { enabled: true, rateLimit: { calls: 5, windowMs: 1000 }, approval: 'always' })
    const bad = await app.inject({ method: 'PUT', url, headers: admin, payload: { approval: 'sometimes' } })
    t.equal(bad.statusCode, 400)
    const back = await app.inject({ method: 'PUT', url, headers: admin, payload: { approval: null } })
    t.match(back.json(), { approval: null, rateLimit: { calls: 5, windowMs: 1000 } })
  })

  t.test('a gated call in a direct run ends it with APPROVAL_REQUIRED, uncatchable, before the tool acts', async (t) => {
    const tenant = await createTenant(app, 'appr-sync')
    await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:insert`, headers: admin, payload: { approval: 'always' } })
    const res = await tenant.execute(`
      await callTool('data:query', {})
      try { await callTool('data:insert', { document: { n: 1 } }) } catch (e) { return 'caught ' + e.code }
      return 'went on'
    `)
    const body = res.json()
    t.equal(body.success, false)
    t.equal(body.error.code, 'APPROVAL_REQUIRED')
    t.match(body.error.message, /data:insert.*POST `\/api\/executions`/)
    await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:insert`, headers: admin, payload: { approval: 'never' } })
    const after = await tenant.execute("return (await callTool('data:query', {})).length")
    t.equal(after.json().value, 0, 'nothing was inserted')
    const ok = await tenant.execute("await callTool('data:insert', { document: { n: 2 } }); return 'done'")
    t.equal(ok.json().value, 'done', 'the override never lets the call through at once')
  })

  t.test('a session\'s run cannot wait either: APPROVAL_REQUIRED', async (t) => {
    const tenant = await createTenant(app, 'appr-session')
    await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:insert`, headers: admin, payload: { approval: 'always' } })
    const session = await rawSession(app, tenant.headers)
    const res = await session.execute(session.frame(0, { code: "await callTool('data:insert', { document: { n: 1 } })" }))
    t.equal(res.statusCode, 200)
    const result = session.open(res.json().frame)
    t.equal(result.success, false)
    t.equal(result.error.code, 'APPROVAL_REQUIRED')
  })

  t.test('a queued run waits for a decision instead: awaiting_approval, the call not made', async (t) => {
    const tenant = await createTenant(app, 'appr-queued')
    await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:insert`, headers: admin, payload: { approval: 'always' } })
    const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: "await callTool('data:insert', { document: { n: 1 } })" } })
    t.equal(res.statusCode, 202)
    const { executionId } = res.json() as { executionId: string }
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/api/executions/${executionId}`, headers: tenant.headers })).json().status === 'awaiting_approval', { message: 'the run waits' })
    const after = await tenant.execute("return (await callTool('data:query', {})).length")
    t.equal(after.json().value, 0, 'nothing was inserted')
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${executionId}`, headers: tenant.headers })).statusCode, 202)
  })

  t.test('a platform tool\'s default: stored, shown, and followed by tenants without an override', async (t) => {
    const put = await app.inject({
      method: 'PUT',
      url: '/admin/tools/pay:send',
      headers: admin,
      payload: { description: 'Send money', argsSchema: { type: 'object' }, http: { method: 'POST', url: `${upstream}/send` }, defaultEnabled: true, approval: 'always' }
    })
    t.equal(put.statusCode, 200, put.body)
    t.equal(put.json().approval, 'always')
    const plain = await app.inject({ method: 'PUT', url: '/admin/tools/pay:quote', headers: admin, payload: { description: 'Quote', argsSchema: { type: 'object' }, http: { method: 'GET', url: `${upstream}/quote` } } })
    t.equal(plain.json().approval, 'never', 'never unless the admin says otherwise')
    const tenant = await createTenant(app, 'appr-platform', { permissions: ['tool:pay:send'] })
    const res = await tenant.execute("await callTool('pay:send', { amount: 5 })")
    t.equal(res.json().error?.code, 'APPROVAL_REQUIRED', 'refused before the upstream is called')
    await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/pay:send`, headers: admin, payload: { approval: 'never' } })
    const overridden = await tenant.execute("await callTool('pay:send', { amount: 5 })")
    t.equal(overridden.json().error?.code, 'TOOL_ERROR', 'the tenant override lets the call go to the upstream (which is down here)')
  })
})
