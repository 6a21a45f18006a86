import t from 'tap'
import { buildApp, createTenant, adminHeaders, bearer, tokenFor } from '../helper.ts'
import { generateToolDeclarations } from '../../services/code-mode/tool-declarations.ts'
import { typeCheck, typeCheckScript } from './type-check.ts'

t.test('GET /api/tools.d.ts', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'dts', { permissions: ['tool:data:query', 'tool:data:insert', 'tool:data:delete'] })
  const dts = async (headers: Record<string, string> = tenant.headers) => await app.inject({ method: 'GET', url: '/api/tools.d.ts', headers })

  const res = await dts()
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  const etag = res.headers.etag as string
  t.match(etag, /^"[A-Za-z0-9_-]{43}"$/)

  t.test('declares the permitted, enabled tools with their descriptions, and console', async (t) => {
    t.match(text, 'declare function callTool (name: "data:query", args: Tools.DataQuery.Args): Promise<Tools.DataQuery.Result>')
    t.match(text, 'declare function callTool (name: "data:insert"')
    t.match(text, 'declare function callTool (name: "data:delete"')
    t.notMatch(text, '"data:update"', 'the token lacks tool:data:update')
    t.match(text, "Find the tenant's documents whose body contains `filter`")
    t.match(text, 'declare const console: EnclaveConsole')
  })

  t.test('compiles with tsc --strict on its own', async (t) => {
    t.same(typeCheck({ '/tools.d.ts': text }), [])
  })

  t.test('a script using a permitted tool with the right args type-checks, results typed', async (t) => {
    t.same(typeCheckScript(text, `
      const docs = await callTool('data:query', { collection: 'orders', filter: { status: 'open' }, limit: 10 })
      const ids: string[] = docs.map((d) => d.id)
      const doc = await callTool('data:insert', { document: { total: 3 } })
      const when: string = doc.createdAt
      const { deleted } = await callTool('data:delete', { filter: { id: ids[0] } })
      console.log(deleted + 1, when)
      return ids
    `), [])
  })

  t.test('wrong arg type, unknown tool and unpermitted tool each fail type-checking', async (t) => {
    const wrongType = typeCheckScript(text, "return await callTool('data:query', { limit: 'ten' })")
    t.equal(wrongType.length, 1)
    t.match(wrongType[0], /^\/script\.ts:2: No overload matches this call/)
    const unknownArg = typeCheckScript(text, "return await callTool('data:query', { bogus: 1 })")
    t.equal(unknownArg.length, 1, 'additionalProperties: false is an excess property')
    const unknown = typeCheckScript(text, "return await callTool('data:nope', {})")
    t.equal(unknown.length, 1)
    t.match(unknown[0], /No overload matches this call/)
    const unpermitted = typeCheckScript(text, "return await callTool('data:update', { filter: {}, set: { a: 1 } })")
    t.equal(unpermitted.length, 1)
    t.match(unpermitted[0], /No overload matches this call/)
    const resultMisuse = typeCheckScript(text, "const r = await callTool('data:delete', { filter: {} }); const n: string = r.deleted; return n")
    t.equal(resultMisuse.length, 1, 'results are typed too')
    const hostGlobal = typeCheckScript(text, 'setTimeout(() => {}, 1); return 1')
    t.equal(hostGlobal.length, 1, 'no timers in a script')
  })

  t.test('If-None-Match with the ETag → 304', async (t) => {
    const again = await dts({ ...tenant.headers, 'if-none-match': etag })
    t.equal(again.statusCode, 304)
    t.equal(again.body, '')
    t.equal(again.headers.etag, etag)
    const other = await dts({ ...tenant.headers, 'if-none-match': '"stale"' })
    t.equal(other.statusCode, 200)
    t.equal(other.body, text, 'the same declarations again')
  })

  t.test('disabling a tool or changing permissions changes the declarations and the ETag', async (t) => {
    const put = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:delete`, headers: adminHeaders(), payload: { enabled: false } })
    t.equal(put.statusCode, 200)
    const disabled = await dts({ ...tenant.headers, 'if-none-match': etag })
    t.equal(disabled.statusCode, 200, 'the old ETag no longer matches')
    t.notMatch(disabled.body, '"data:delete"')
    t.not(disabled.headers.etag, etag)
    t.equal(typeCheckScript(disabled.body, "return await callTool('data:delete', { filter: {} })").length, 1)

    const enabled = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:delete`, headers: adminHeaders(), payload: { enabled: true } })
    t.equal(enabled.statusCode, 200)
    const back = await dts()
    t.equal(back.headers.etag, etag, 'enabled again: the same declarations, the same ETag')

    const narrower = await dts(bearer(tokenFor({ tenantId: tenant.tenantId, permissions: ['tool:data:query'] })))
    t.not(narrower.headers.etag, etag)
    t.notMatch(narrower.body, '"data:insert"')
    const none = await dts(bearer(tokenFor({ tenantId: tenant.tenantId, permissions: [] })))
    t.match(none.body, 'declare function callTool (name: never, args: never): Promise<never>')
    t.same(typeCheck({ '/tools.d.ts': none.body }), [])
    t.equal(typeCheckScript(none.body, "return await callTool('data:query', {})").length, 1)
  })

  t.test('needs a token', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/api/tools.d.ts' })
    t.equal(res.statusCode, 401)
    t.match(res.json(), { code: 'MISSING_TOKEN' })
  })
})

t.test('the generator types any JSON Schema (a platform-style tool)', async (t) => {
  const text = await generateToolDeclarations([{
    name: 'crm.contacts:find-by-email',
    description: 'Find a contact by e-mail. Ends a comment: */ still safe',
    argsSchema: { type: 'object', properties: { email: { type: 'string', format: 'email' }, fields: { type: 'array', items: { enum: ['name', 'phone'] } } }, required: ['email'], additionalProperties: false },
    resultSchema: {
      type: 'object',
      properties: { contact: { anyOf: [{ $ref: '#/$defs/Contact' }, { type: 'null' }] }, score: { type: 'number', minimum: 0, maximum: 1 } },
      required: ['contact'],
      $defs: { Contact: { type: 'object', properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } }, required: ['name'] } }
    }
  }, {
    // Both schemas define `Contact`; a schema that points outside itself is not followed.
    name: 'crm:update',
    description: 'Update a contact',
    argsSchema: { type: 'object', properties: { contact: { $ref: '#/$defs/Contact' } }, required: ['contact'], $defs: { Contact: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } } },
    resultSchema: { type: 'object', properties: { contact: { $ref: '#/$defs/Contact' }, leak: { $ref: '/etc/hostname' } }, $defs: { Contact: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' } } } } }
  }, {
    name: 'no-result',
    description: 'A tool without a result schema',
    argsSchema: { type: 'object' }
  }])
  t.same(typeCheck({ '/tools.d.ts': text }), [])
  t.match(text, 'declare namespace Tools.CrmContactsFindByEmail')
  t.notMatch(text, 'Ends a comment: */', 'a description cannot close the JSDoc')
  t.same(typeCheckScript(text, `
    const found = await callTool('crm.contacts:find-by-email', { email: 'a@b.c', fields: ['name'] })
    const name: string | undefined = found.contact?.name
    const updated = await callTool('crm:update', { contact: { id: 1 } })
    const other: unknown = await callTool('no-result', {})
    return [name, updated, other]
  `), [])
  t.equal(typeCheckScript(text, "return await callTool('crm.contacts:find-by-email', { fields: ['name'] })").length, 1, 'a required property is required')
  t.equal(typeCheckScript(text, "return await callTool('crm.contacts:find-by-email', { email: 'x', fields: ['age'] })").length, 1, 'enums are unions')
  t.equal(typeCheckScript(text, "const r = await callTool('crm:update', { contact: { id: 1 } }); const s: number = r; return s").length, 1, 'the unreadable result is unknown, not any')
})

t.test('GET /api/tools?search=', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'search')
  const names = async (search: string) => {
    const res = await app.inject({ method: 'GET', url: `/api/tools?search=${encodeURIComponent(search)}`, headers: tenant.headers })
    t.equal(res.statusCode, 200)
    return res.json().tools.map((tool: { name: string }) => tool.name)
  }
  // Platform tools are global: on a shared database another test file's may be listed too.
  t.same((await names('')).filter((name: string) => name.startsWith('data:')), ['data:query', 'data:insert', 'data:update', 'data:delete'], 'no words: every tool')
  t.same(await names('QUERY'), ['data:query'], 'case-insensitive, inside a name')
  t.same(await names('document matching'), ['data:update', 'data:delete'], 'every word, in the description')
  t.same(await names('data  filter  merge'), ['data:update'], 'words from name and description together')
  t.same(await names('query merge'), [], 'all words must match')
  const full = (await app.inject({ method: 'GET', url: '/api/tools?search=insert', headers: tenant.headers })).json().tools[0]
  t.match(full, { name: 'data:insert', argsSchema: { type: 'object' }, resultSchema: { type: 'object', required: ['id', 'tenantId', 'createdBy', 'createdAt'] }, enabled: true, permitted: true })
})
