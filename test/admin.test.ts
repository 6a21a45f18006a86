import t from 'tap'
import { buildApp, uniqueTenantId, adminHeaders } from './helper.ts'
import { TIER_QUOTAS } from '../services/tenants/tiers.ts'

t.test('admin routes', async (t) => {
  const app = await buildApp(t)
  const headers = adminHeaders()
  const tenantId = uniqueTenantId('admin')

  t.test('PUT then GET a tenant', async (t) => {
    const put = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenantId}`, headers, payload: { tier: 'starter', name: 'Acme', quotaOverrides: { maxConcurrentExecutions: 2 } } })
    t.equal(put.statusCode, 200)
    const body = put.json()
    t.match(body, { tenantId, name: 'Acme', tier: 'starter', quotaOverrides: { maxConcurrentExecutions: 2 }, registered: true })
    t.same(body.quotas, { ...TIER_QUOTAS.starter, maxConcurrentExecutions: 2 })
    const get = await app.inject({ method: 'GET', url: `/admin/tenants/${tenantId}`, headers })
    t.same(get.json(), body)
  })

  t.test('GET an unknown tenant shows it as free and unregistered', async (t) => {
    const id = uniqueTenantId('nobody')
    const res = await app.inject({ method: 'GET', url: `/admin/tenants/${id}`, headers })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { tenantId: id, tier: 'free', registered: false, quotas: TIER_QUOTAS.free })
  })

  t.test('bad input is a 400 with a message and changes nothing', async (t) => {
    const bad: Array<[string, string, unknown]> = [
      ['unknown tier', `/admin/tenants/${tenantId}`, { tier: 'platinum' }],
      ['missing tier', `/admin/tenants/${tenantId}`, { name: 'x' }],
      ['unknown field', `/admin/tenants/${tenantId}`, { tier: 'free', owner: 'me' }],
      ['unknown quota', `/admin/tenants/${tenantId}`, { tier: 'free', quotaOverrides: { maxEverything: 1 } }],
      ['negative quota', `/admin/tenants/${tenantId}`, { tier: 'free', quotaOverrides: { maxMemoryMB: -1 } }],
      ['fractional quota', `/admin/tenants/${tenantId}`, { tier: 'free', quotaOverrides: { maxMemoryMB: 1.5 } }],
      ['bad tenant id', '/admin/tenants/bad%20id', { tier: 'free' }],
      ['not an object', `/admin/tenants/${tenantId}`, [1, 2]]
    ]
    for (const [name, url, payload] of bad) {
      const res = await app.inject({ method: 'PUT', url, headers, payload: payload as object })
      t.equal(res.statusCode, 400, name)
      t.equal(res.json().code, 'BAD_REQUEST', name)
      t.ok(res.json().message.length > 0, `${name} has a message`)
    }
    const malformed = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenantId}`, headers: { ...headers, 'content-type': 'application/json' }, payload: '{"tier":' })
    t.equal(malformed.statusCode, 400)
    const get = await app.inject({ method: 'GET', url: `/admin/tenants/${tenantId}`, headers })
    t.match(get.json(), { tier: 'starter', name: 'Acme', quotaOverrides: { maxConcurrentExecutions: 2 } }, 'unchanged')
  })

  t.test('tool settings: PUT, DELETE, validation, unknown tool', async (t) => {
    const url = `/admin/tenants/${tenantId}/tools/data:insert`
    const put = await app.inject({ method: 'PUT', url, headers, payload: { enabled: false, rateLimit: { calls: 5, windowMs: 1000 }, config: { note: 'x' } } })
    t.equal(put.statusCode, 200)
    t.match(put.json(), { tool: 'data:insert', enabled: false, rateLimit: { calls: 5, windowMs: 1000 }, config: { note: 'x' } })
    let tool = await app.tools.get(tenantId, 'data:insert')
    t.match(tool, { enabled: false, rateLimit: { calls: 5, windowMs: 1000 } })

    for (const payload of [{ enabled: 'no' }, { enabled: true, rateLimit: { calls: 0, windowMs: 1000 } }, { enabled: true, extra: 1 }, {}]) {
      const res = await app.inject({ method: 'PUT', url, headers, payload })
      t.equal(res.statusCode, 400, JSON.stringify(payload))
    }
    tool = await app.tools.get(tenantId, 'data:insert')
    t.match(tool, { enabled: false }, 'bad input left the setting as it was')

    const unknown = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenantId}/tools/shell:exec`, headers, payload: { enabled: true } })
    t.equal(unknown.statusCode, 404)
    t.equal(unknown.json().error, 'Unknown tool: shell:exec')

    const del = await app.inject({ method: 'DELETE', url, headers })
    t.equal(del.statusCode, 204)
    tool = await app.tools.get(tenantId, 'data:insert')
    t.match(tool, { enabled: true, rateLimit: null }, 'back to the default')
    t.equal((await app.inject({ method: 'DELETE', url, headers })).statusCode, 204, 'deleting again is fine')
  })
})
