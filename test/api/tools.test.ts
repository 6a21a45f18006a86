import t from 'tap'
import { buildApp, createTenant, adminHeaders } from '../helper.ts'

t.test('tools', async (t) => {
  const app = await buildApp(t)
  const admin = adminHeaders()

  t.test('data tools: insert, query with filters, update, delete', async (t) => {
    const tenant = await createTenant(app, 'data', { userId: 'alice', tier: 'starter' })
    const res = await tenant.execute(`
      const a = await callTool('data:insert', { document: { kind: 'fruit', name: 'apple', tags: ['red'] } })
      await callTool('data:insert', { document: { kind: 'fruit', name: 'pear' } })
      await callTool('data:insert', { collection: 'veg', document: { kind: 'veg', name: 'leek' } })
      const fruit = await callTool('data:query', { filter: { kind: 'fruit' } })
      const byTag = await callTool('data:query', { filter: { tags: ['red'] } })
      const byId = await callTool('data:query', { filter: { id: a.id } })
      const veg = await callTool('data:query', { collection: 'veg' })
      const limited = await callTool('data:query', { limit: 1 })
      const updated = await callTool('data:update', { filter: { name: 'pear' }, set: { ripe: true } })
      const ripe = await callTool('data:query', { filter: { ripe: true } })
      const deleted = await callTool('data:delete', { filter: { kind: 'fruit' } })
      const left = await callTool('data:query', {})
      return { a, fruit: fruit.length, byTag: byTag.map(d => d.name), byId: byId.map(d => d.name), veg: veg.map(d => d.name), limited: limited.length, updated, ripe: ripe.map(d => d.name), deleted, left: left.length }
    `, {})
    const value = res.json().value
    t.match(value.a, { kind: 'fruit', name: 'apple', tenantId: tenant.tenantId, createdBy: 'alice' })
    t.match(value.a.id, /^[0-9a-f-]{36}$/)
    t.ok(!Number.isNaN(Date.parse(value.a.createdAt)))
    t.same({ ...value, a: undefined }, { a: undefined, fruit: 2, byTag: ['apple'], byId: ['apple'], veg: ['leek'], limited: 1, updated: { updated: 1 }, ripe: ['pear'], deleted: { deleted: 2 }, left: 0 })
  })

  t.test('a tenant can never reach another tenant\'s documents', async (t) => {
    const victim = await createTenant(app, 'victim')
    const attacker = await createTenant(app, 'attacker')
    await victim.execute("await callTool('data:insert', { document: { secret: 'v' } }); await callTool('data:insert', { collection: 'private', document: { secret: 'p' } })")
    const res = await attacker.execute(`
      const v = ${JSON.stringify(victim.tenantId)}
      const out = {}
      out.byTenantFilter = await callTool('data:query', { filter: { tenantId: v } })
      out.bySecret = await callTool('data:query', { filter: { secret: 'v' } })
      out.byCollection = await callTool('data:query', { collection: 'private' })
      out.empty = await callTool('data:query', {})
      out.forged = await callTool('data:insert', { document: { tenantId: v, id: '00000000-0000-0000-0000-000000000000', createdBy: 'victim', secret: 'planted' } })
      out.updated = await callTool('data:update', { filter: { tenantId: v }, set: { secret: 'pwned' } })
      out.updatedAll = await callTool('data:update', { filter: {}, set: { pwned: true } })
      out.deleted = await callTool('data:delete', { filter: { tenantId: v } })
      return out
    `)
    const out = res.json().value
    t.same(out.byTenantFilter, [])
    t.same(out.bySecret, [])
    t.same(out.byCollection, [])
    t.same(out.empty, [])
    t.equal(out.forged.tenantId, attacker.tenantId, 'a tenantId inside a document never moves it')
    t.not(out.forged.id, '00000000-0000-0000-0000-000000000000')
    t.equal(out.forged.createdBy, 'attacker-user')
    t.same(out.updated, { updated: 0 })
    t.same(out.updatedAll, { updated: 1 }, 'only the attacker\'s own planted row')
    t.same(out.deleted, { deleted: 0 })
    const victimView = await victim.execute("return [await callTool('data:query', {}), await callTool('data:query', { collection: 'private' })]")
    t.same(victimView.json().value.map((docs: Array<{ secret: string, pwned?: boolean }>) => docs.map((d) => [d.secret, d.pwned])), [[['v', undefined]], [['p', undefined]]])
  })

  t.test('bad arguments are a catchable TOOL_ERROR with the reason', async (t) => {
    const tenant = await createTenant(app, 'args')
    const res = await tenant.execute(`
      const out = []
      for (const args of [{ limit: 0 }, { collection: '../etc' }, { filter: 'x' }, { bogus: 1 }, null]) {
        try { await callTool('data:query', args) } catch (e) { out.push([e.code, e.message]) }
      }
      try { await callTool('data:insert', { document: 'nope' }) } catch (e) { out.push([e.code, e.message]) }
      return out
    `)
    const out = res.json().value as Array<[string, string]>
    t.equal(out.length, 6)
    for (const [code, message] of out) {
      t.equal(code, 'TOOL_ERROR')
      t.match(message, /^Invalid arguments for data:(query|insert): /)
    }
  })

  t.test('unknown, disabled and rate-limited tools', async (t) => {
    const tenant = await createTenant(app, 'registry', { permissions: ['tool:data:query', 'tool:data:insert', 'tool:shell:exec'] })
    const unknown = await tenant.execute("try { await callTool('shell:exec', {}) } catch (e) { return [e.code, e.message] }")
    t.same(unknown.json().value, ['TOOL_NOT_FOUND', 'Tool not found: shell:exec (no tool this token may call has a similar name; GET `/api/tools` lists them)'])

    t.equal((await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:insert`, headers: admin, payload: { enabled: false } })).statusCode, 200)
    const disabled = await tenant.execute("try { await callTool('data:insert', { document: {} }) } catch (e) { return [e.code, e.message] }")
    t.same(disabled.json().value, ['TOOL_DISABLED', 'Tool disabled: data:insert is turned off for this tenant; an admin can enable it (PUT `/admin/tenants/{tenantId}/tools/data:insert`)'])

    t.equal((await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:query`, headers: admin, payload: { enabled: true, rateLimit: { calls: 3, windowMs: 60_000 } } })).statusCode, 200)
    const limited = await tenant.execute(`
      const out = []
      for (let i = 0; i < 5; i++) {
        try { await callTool('data:query', {}); out.push('ok') } catch (e) { out.push(e.code) }
      }
      return out
    `)
    t.same(limited.json().value, ['ok', 'ok', 'ok', 'TOOL_RATE_LIMITED', 'TOOL_RATE_LIMITED'])

    const listing = await app.inject({ method: 'GET', url: '/api/tools', headers: tenant.headers })
    const byName = Object.fromEntries(listing.json().tools.map((tool: { name: string }) => [tool.name, tool]))
    t.match(byName['data:query'], { enabled: true, permitted: true, rateLimit: { calls: 3, windowMs: 60_000 } })
    t.match(byName['data:insert'], { enabled: false, permitted: true })
    t.match(byName['data:update'], { enabled: true, permitted: false, rateLimit: null })
    t.equal(byName['data:query'].argsSchema.type, 'object')
    t.equal(byName['shell:exec'], undefined)
  })

  t.test('lookalike tool names are not the tool', async (t) => {
    const tenant = await createTenant(app, 'unicode')
    const res = await tenant.execute(`
      const out = []
      for (const name of ['data:query\\u200b', 'data\\uff1aquery', 'DATA:QUERY', ' data:query', 'data:query\\u0000']) {
        try { await callTool(name, {}); out.push('called') } catch (e) { out.push(e.code) }
      }
      return out
    `)
    // Names with invisible or non-ASCII characters are refused by the enclave itself; a name that
    // only differs in case is no tool's.
    t.same(res.json().value, ['TOOL_NOT_FOUND', 'TOOL_NOT_FOUND', 'TOOL_NOT_FOUND', 'TOOL_NOT_FOUND', 'TOOL_NOT_FOUND'])
  })
})
