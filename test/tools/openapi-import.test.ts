import t from 'tap'
import type { AddressInfo } from 'node:net'
import { adminHeaders, buildApp, createTenant } from '../helper.ts'
import { freePort } from '../support/free-port.ts'
import { buildPlatformApi } from '../../examples/platform-api/server.ts'
import { planImport, toJsonSchema } from '../../services/tools/openapi-import.ts'

t.test('the example platform API end to end: import its OpenAPI document, call it from a script', async (t) => {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const app = await buildApp(t, { TOOL_UPSTREAMS: origin })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port: enclavePort } = app.server.address() as AddressInfo
  const api = buildPlatformApi({ enclaveUrl: `http://127.0.0.1:${enclavePort}`, origin })
  await api.listen({ port, host: '127.0.0.1' })
  t.teardown(async () => { await api.close() })
  const admin = adminHeaders()

  const openapi = (await api.inject({ method: 'GET', url: '/openapi.json' })).json()
  const imported = await app.inject({ method: 'POST', url: '/admin/tools/import', headers: admin, payload: { openapi, baseUrl: origin, prefix: 'crm' } })
  t.equal(imported.statusCode, 200)
  t.same(imported.json(), {
    imported: ['crm:whoAmI', 'crm:listContacts', 'crm:createContact', 'crm:getContact'],
    skipped: [{ operation: 'GET /health', reason: 'no operationId' }]
  })

  const create = (await app.inject({ method: 'GET', url: '/admin/tools/crm:createContact', headers: admin })).json()
  t.match(create, {
    defaultEnabled: false,
    http: { method: 'POST', url: `${origin}/crm/contacts`, queryArgs: ['source'], bodyArg: 'body' },
    argsSchema: {
      type: 'object',
      required: ['body'],
      additionalProperties: false,
      properties: {
        source: { type: 'string', enum: ['script', 'import'] },
        body: { type: 'object', required: ['name'], properties: { email: { type: ['string', 'null'], format: 'email' } } }
      }
    },
    resultSchema: { allOf: [{ required: ['name'] }, { required: ['id', 'createdBy'] }] }
  })
  t.notOk(JSON.stringify(create).includes('$ref'), 'local $refs are resolved')
  t.notOk(JSON.stringify(create).includes('nullable'), 'OpenAPI 3.0 nullable is converted')
  const get = (await app.inject({ method: 'GET', url: '/admin/tools/crm:getContact', headers: admin })).json()
  t.match(get, { http: { method: 'GET', url: `${origin}/crm/contacts/{id}` }, argsSchema: { required: ['id'], properties: { id: { type: 'string', minLength: 1 } } } })

  const tools = ['crm:whoAmI', 'crm:listContacts', 'crm:createContact', 'crm:getContact']
  const tenant = await createTenant(app, 'crm', { userId: 'alice', permissions: tools.map((n) => `tool:${n}`) })
  const other = await createTenant(app, 'crm-other', { permissions: tools.map((n) => `tool:${n}`) })
  for (const who of [tenant, other]) {
    for (const tool of tools) {
      const res = await app.inject({ method: 'PUT', url: `/admin/tenants/${who.tenantId}/tools/${tool}`, headers: admin, payload: { enabled: true } })
      t.equal(res.statusCode, 200, `${tool} enabled for ${who.tenantId}`)
    }
  }
  const run = await tenant.execute(`
    const me = await callTool('crm:whoAmI', {})
    const created = await callTool('crm:createContact', { source: 'script', body: { name: 'Ada Lovelace', email: null } })
    const found = await callTool('crm:listContacts', { q: 'ada' })
    const one = await callTool('crm:getContact', { id: created.id })
    let missing
    try { await callTool('crm:getContact', { id: 'nope' }) } catch (e) { missing = e.message }
    return { me, created, found: found.map(c => c.name), same: one.id === created.id, missing }
  `)
  const result = run.json()
  t.equal(result.success, true, JSON.stringify(result.error))
  t.same(result.value.me, { tenantId: tenant.tenantId, userId: 'alice', tool: 'crm:whoAmI', executionId: result.executionId })
  t.match(result.value.created, { name: 'Ada Lovelace', email: null, createdBy: 'alice' })
  t.same(result.value.found, ['Ada Lovelace'])
  t.equal(result.value.same, true)
  t.equal(result.value.missing, 'Tool crm:getContact failed: upstream answered 404')
  const theirs = await other.execute("return await callTool('crm:listContacts', {})")
  t.same(theirs.json().value, [], 'the upstream keeps each tenant\'s data apart')

  t.test('a base URL outside TOOL_UPSTREAMS refuses the whole import', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/admin/tools/import', headers: admin, payload: { openapi, baseUrl: 'http://127.0.0.2:1', prefix: 'evil' } })
    t.equal(res.statusCode, 400)
    t.match(res.json(), { code: 'INVALID_TOOL', error: /not listed in TOOL_UPSTREAMS/ })
    t.equal((await app.inject({ method: 'GET', url: '/admin/tools/evil:whoAmI', headers: admin })).statusCode, 404)
  })

  t.test('a document that is not OpenAPI 3.x is refused', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/admin/tools/import', headers: admin, payload: { openapi: { swagger: '2.0', paths: {} }, baseUrl: origin, prefix: 'old' } })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'INVALID_OPENAPI')
  })
})

t.test('planImport: 3.1 with $refs, path + query + body, operations filter, circular refs', async (t) => {
  const openapi = {
    openapi: '3.1.0',
    info: { title: 'x', version: '1' },
    components: {
      schemas: {
        Order: { type: 'object', properties: { id: { type: 'integer' }, total: { $ref: '#/components/schemas/Money' } } },
        Money: { type: 'number', minimum: 0 },
        Node: { type: 'object', properties: { child: { $ref: '#/components/schemas/Node' } } }
      },
      parameters: { Limit: { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 100 } } },
      requestBodies: { OrderBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Order' } } } } }
    },
    paths: {
      '/shops/{shop}/orders': {
        parameters: [{ name: 'shop', in: 'path', required: true, schema: { type: 'string' } }],
        get: { operationId: 'listOrders', parameters: [{ $ref: '#/components/parameters/Limit' }], responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/Order' } } } } } } },
        post: { operationId: 'createOrder', requestBody: { $ref: '#/components/requestBodies/OrderBody' }, parameters: [{ name: 'dryRun', in: 'query', schema: { type: 'boolean' } }], responses: { 201: { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Order' } } } } } }
      },
      '/tree': { get: { operationId: 'tree', responses: { 200: { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } } } } } },
      '/upload': { put: { operationId: 'upload', requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string' } } } }, responses: { 204: { description: 'ok' } } } },
      '/anon': { delete: { responses: { 204: { description: 'ok' } } } }
    }
  }
  const plan = await planImport({ openapi, baseUrl: 'https://api.example.com/v1/', prefix: 'shop' })
  t.same(plan.tools.map((tool) => tool.name), ['shop:listOrders', 'shop:createOrder'])
  t.same(plan.skipped, [
    { operation: 'tree', reason: 'circular $ref' },
    { operation: 'upload', reason: 'request body is not JSON' },
    { operation: 'DELETE /anon', reason: 'no operationId' }
  ])
  const [list, create] = plan.tools
  t.same(list?.input.http, { method: 'GET', url: 'https://api.example.com/v1/shops/{shop}/orders' })
  t.same(list?.input.argsSchema, { type: 'object', properties: { shop: { type: 'string' }, limit: { type: 'integer', maximum: 100 } }, required: ['shop'], additionalProperties: false })
  t.same(list?.input.resultSchema, { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' }, total: { type: 'number', minimum: 0 } } } })
  t.same(create?.input.http, { method: 'POST', url: 'https://api.example.com/v1/shops/{shop}/orders', queryArgs: ['dryRun'], bodyArg: 'body' })
  t.same(create?.input.argsSchema.required, ['shop', 'body'])

  const only = await planImport({ openapi, baseUrl: 'https://api.example.com', prefix: 'shop', operations: ['createOrder', 'nope'] })
  t.same(only.tools.map((tool) => tool.name), ['shop:createOrder'])
  t.same(only.skipped, [{ operation: 'nope', reason: 'no such operationId in the document' }])
})

t.test('OpenAPI 3.0 schema keywords become JSON Schema 2020-12', async (t) => {
  t.same(toJsonSchema({ type: 'integer', minimum: 0, exclusiveMinimum: true, maximum: 9, exclusiveMaximum: false, nullable: true, example: 3, 'x-internal': 1 }, true),
    { type: ['integer', 'null'], exclusiveMinimum: 0, maximum: 9 })
  t.same(toJsonSchema({ enum: ['a', 'b'], nullable: true }, true), { enum: ['a', 'b', null] })
  t.same(toJsonSchema({ allOf: [{ type: 'object' }], nullable: true }, true), { anyOf: [{ allOf: [{ type: 'object' }] }, { type: 'null' }] })
  t.same(toJsonSchema({ type: ['string', 'null'], examples: ['x'] }, false), { type: ['string', 'null'], examples: ['x'] }, '3.1 passes through')
})
