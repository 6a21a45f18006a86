// The seed guide's three tenant-isolation tests, through HTTP.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'

t.test('tenant isolation (the guide\'s tests)', async (t) => {
  const app = await buildApp(t)
  const tenant1 = await createTenant(app, 'tenant-1', { permissions: ['tool:data:query', 'tool:data:insert'], quotaOverrides: { maxToolCallsPerExecution: 50 } })
  const tenant2 = await createTenant(app, 'tenant-2', { permissions: ['tool:data:query'], quotaOverrides: { maxToolCallsPerExecution: 50 } })

  t.test('isolates data between tenants', async (t) => {
    const insert = await tenant1.execute("await callTool('data:insert', { document: { name: 'secret' } });")
    t.equal(insert.statusCode, 200)
    t.equal(insert.json().success, true)

    const result = await tenant2.execute("const items = await callTool('data:query', { filter: {} });\nreturn items;")
    t.equal(result.statusCode, 200)
    t.same(result.json().value, [])

    const own = await tenant1.execute("return await callTool('data:query', { filter: {} })")
    t.match(own.json().value, [{ name: 'secret', tenantId: tenant1.tenantId }], 'tenant 1 still sees its own row')
  })

  t.test('enforces tool permissions', async (t) => {
    const result = await tenant2.execute("await callTool('data:insert', { document: { name: 'test' } });")
    t.equal(result.statusCode, 200)
    t.equal(result.json().success, false)
    t.match(result.json().error.message, 'Permission denied')
    t.equal(result.json().error.code, 'PERMISSION_DENIED')
    t.equal(result.json().error.message, "Permission denied: tool:data:insert is not among this token's permissions; ask for a token that carries it")
    const nothing = await tenant2.execute("return await callTool('data:query', { filter: { name: 'test' } })")
    t.same(nothing.json().value, [], 'nothing was inserted')
  })

  t.test('enforces quotas', async (t) => {
    const limited = await createTenant(app, 'limited', { permissions: ['tool:data:query'], quotaOverrides: { maxToolCallsPerExecution: 2 } })
    const result = await limited.execute(`
      await callTool('data:query', {});
      await callTool('data:query', {});
      await callTool('data:query', {}); // Should fail
    `)
    t.equal(result.json().success, false)
    t.equal(result.json().error.code, 'MAX_TOOL_CALLS')
  })
})
