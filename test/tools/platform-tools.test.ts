import t from 'tap'
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import { adminHeaders, bearer, buildApp, createTenant, tokenFor, uniqueTenantId } from '../helper.ts'
import { freePort } from '../support/free-port.ts'
import { waitFor } from '../support/wait-for.ts'
import { startUpstream } from './fixtures/upstream.ts'

const OBJECT = { type: 'object' }

t.test('platform tools over HTTP', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const refusedOrigin = `http://127.0.0.1:${await freePort()}`
  const metadataOrigin = 'http://169.254.169.254'
  const app = await buildApp(t, { TOOL_UPSTREAMS: [upstream.origin, refusedOrigin, metadataOrigin, 'http://[::ffff:169.254.169.254]'].join(',') })
  const admin = adminHeaders()
  const put = async (name: string, body: Record<string, unknown>) => await app.inject({ method: 'PUT', url: `/admin/tools/${name}`, headers: admin, payload: body })
  const define = async (name: string, http: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> => {
    const res = await put(name, { description: `test tool ${name}`, argsSchema: OBJECT, http, defaultEnabled: true, ...extra })
    if (res.statusCode !== 200) throw new Error(`could not define ${name}: ${res.body}`)
  }
  const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())

  t.test('the upstream gets a verifiable tenant assertion and the idempotency key, never the caller\'s token', async (t) => {
    await define('t:getUser', { method: 'GET', url: `${upstream.origin}/users/{id}` }, {
      argsSchema: { type: 'object', properties: { id: { type: 'string' }, verbose: { type: 'boolean' } }, required: ['id'], additionalProperties: false },
      resultSchema: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } }, required: ['id', 'name'] }
    })
    const tenant = await createTenant(app, 'ptool-assert', { userId: 'alice', permissions: ['tool:t:getUser'] })
    const before = upstream.seen.length
    const res = await tenant.execute("return await callTool('t:getUser', { id: '42', verbose: true })")
    const result = res.json()
    t.same(result.value, { id: '42', name: 'Ada' })
    const request = upstream.seen[before]
    t.ok(request !== undefined)
    if (request === undefined) return
    t.equal(request.url, '/users/42?verbose=true')
    const auth = String(request.headers.authorization)
    t.match(auth, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/)
    const assertion = auth.slice('Bearer '.length)
    const { payload, protectedHeader } = await jwtVerify(assertion, jwks, { issuer: 'tenant-enclave', audience: upstream.origin, algorithms: ['ES256'] })
    t.equal(protectedHeader.alg, 'ES256')
    t.type(protectedHeader.kid, 'string')
    t.match(payload, { tenantId: tenant.tenantId, sub: 'alice', tool: 't:getUser', executionId: result.executionId })
    t.type(payload.jti, 'string')
    t.ok((payload.exp ?? 0) - (payload.iat ?? 0) <= 60, 'expires within 60 s')
    t.equal(request.headers['idempotency-key'], `${result.executionId as string}:0`)
    const callerToken = tenant.headers.authorization.slice('Bearer '.length)
    t.notOk(JSON.stringify(request.headers).includes(callerToken), 'the caller\'s token never reaches the upstream')
    t.not(decodeJwt(assertion).tenantId, undefined)
  })

  t.test('placeholders stay inside their segment; the rest goes to the query or the body', async (t) => {
    await define('t:file', { method: 'GET', url: `${upstream.origin}/files/{dir}/{name}` })
    await define('t:post', { method: 'POST', url: `${upstream.origin}/items` })
    await define('t:delete', { method: 'DELETE', url: `${upstream.origin}/items/{id}` })
    const tenant = await createTenant(app, 'ptool-args', { permissions: ['tool:t:file', 'tool:t:post', 'tool:t:delete'] })
    const before = upstream.seen.length
    const res = await tenant.execute(`
      const file = await callTool('t:file', { dir: 'a/b?c#d@e', name: '../ü€', tag: ['x', 'y'] })
      const posted = await callTool('t:post', { name: 'n', nested: { deep: [1, 2] } })
      const deleted = await callTool('t:delete', { id: 'x/../../admin', reason: 'old' })
      let dots
      try { await callTool('t:file', { dir: '..', name: 'x' }) } catch (e) { dots = e.code + ': ' + e.message }
      return { file, posted, deleted, dots }
    `)
    const value = res.json().value
    t.same(value.file, { dir: 'a/b?c#d@e', name: '../ü€' })
    t.same(value.posted, { stored: { name: 'n', nested: { deep: [1, 2] } } })
    t.equal(value.deleted, null, '204 is null')
    t.match(value.dots, /^TOOL_ERROR: Tool t:file failed: argument "dir" must be/)
    const seen = upstream.seen.slice(before)
    t.equal(seen.length, 3, 'the refused call never left the service')
    t.equal(seen[0]?.url, '/files/a%2Fb%3Fc%23d%40e/..%2F%C3%BC%E2%82%AC?tag=x&tag=y')
    t.equal(seen[1]?.method, 'POST')
    t.equal(seen[1]?.headers['content-type'], 'application/json')
    t.equal(seen[2]?.url, '/items/x%2F..%2F..%2Fadmin?reason=old')
  })

  t.test('every failure is a catchable TOOL_ERROR naming the tool and the cause; the run goes on', async (t) => {
    await define('f:404', { method: 'GET', url: `${upstream.origin}/status/404` })
    await define('f:500', { method: 'GET', url: `${upstream.origin}/status/500` })
    await define('f:slow', { method: 'GET', url: `${upstream.origin}/slow`, timeoutMs: 300 })
    await define('f:redirect', { method: 'GET', url: `${upstream.origin}/redirect` })
    await define('f:text', { method: 'GET', url: `${upstream.origin}/text` })
    await define('f:badjson', { method: 'GET', url: `${upstream.origin}/bad-json` })
    await define('f:big', { method: 'GET', url: `${upstream.origin}/big`, maxResponseKB: 64 })
    await define('f:refused', { method: 'GET', url: `${refusedOrigin}/x` })
    await define('f:shape', { method: 'GET', url: `${upstream.origin}/wrong-shape` }, { resultSchema: { type: 'object', properties: { id: { type: 'integer' } } } })
    await define('f:metadata', { method: 'GET', url: `${metadataOrigin}/latest/meta-data/` })
    await define('f:mapped', { method: 'GET', url: 'http://[::ffff:169.254.169.254]/latest/meta-data/' })
    const names = ['f:404', 'f:500', 'f:slow', 'f:redirect', 'f:text', 'f:badjson', 'f:big', 'f:refused', 'f:shape', 'f:metadata', 'f:mapped']
    const tenant = await createTenant(app, 'ptool-fail', { permissions: names.map((n) => `tool:${n}`), tier: 'starter' })
    const redirectTargetBefore = upstream.seen.filter((r) => r.url === '/users/1').length
    const res = await tenant.execute(`
      const out = {}
      for (const name of ${JSON.stringify(names)}) {
        try { out[name] = await callTool(name, {}) } catch (e) { out[name] = e.code + ': ' + e.message }
      }
      return out
    `)
    const result = res.json()
    t.equal(result.success, true, 'the run went on to its end')
    t.same(result.value, {
      'f:404': 'TOOL_ERROR: Tool f:404 failed: upstream answered 404',
      'f:500': 'TOOL_ERROR: Tool f:500 failed: upstream answered 500',
      'f:slow': 'TOOL_ERROR: Tool f:slow failed: timed out after 300 ms',
      'f:redirect': 'TOOL_ERROR: Tool f:redirect failed: upstream answered 302 (redirects are not followed)',
      'f:text': 'TOOL_ERROR: Tool f:text failed: upstream answered 200 with a non-JSON body',
      'f:badjson': 'TOOL_ERROR: Tool f:badjson failed: upstream answered 200 with a non-JSON body',
      'f:big': 'TOOL_ERROR: Tool f:big failed: response body over 64 KB',
      'f:refused': 'TOOL_ERROR: Tool f:refused failed: connection refused',
      'f:shape': 'TOOL_ERROR: Tool f:shape failed: result does not match resultSchema: /id must be integer',
      'f:metadata': 'TOOL_ERROR: Tool f:metadata failed: refused address 169.254.169.254 (link-local or cloud metadata)',
      'f:mapped': 'TOOL_ERROR: Tool f:mapped failed: refused address ::ffff:a9fe:a9fe (link-local or cloud metadata)'
    })
    t.equal(upstream.seen.filter((r) => r.url === '/users/1').length, redirectTargetBefore, 'the redirect was not followed')
    await waitFor(() => upstream.aborted.includes('/slow'), { timeout: 5000, message: 'the upstream sees the timed-out request\'s socket close' })
    await waitFor(() => upstream.aborted.includes('/big'), { timeout: 5000, message: 'the upstream sees the over-limit response\'s socket close' })
    t.ok(upstream.bigBytesWritten() < 16 * 1024 * 1024, `the service stopped reading: ${upstream.bigBytesWritten()} of 64 MB written`)
  })

  t.test('registration refuses what it cannot call safely, and stores nothing', async (t) => {
    const base = { description: 'x', argsSchema: OBJECT, http: { method: 'GET', url: `${upstream.origin}/users/{id}` } }
    const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
      ['origin not listed', 'r:origin', { ...base, http: { method: 'GET', url: 'http://127.0.0.2:9/x' } }, /not listed in TOOL_UPSTREAMS/],
      ['a built-in name', 'data:query', base, /built-in/],
      ['an invalid args schema', 'r:schema', { ...base, argsSchema: { type: 'nope' } }, /argsSchema is not a valid JSON Schema/],
      ['an invalid result schema', 'r:result', { ...base, resultSchema: { type: 'string', pattern: '(' } }, /resultSchema is not a valid JSON Schema/],
      ['a bad method', 'r:method', { ...base, http: { method: 'TRACE', url: `${upstream.origin}/x` } }, /method/],
      ['a zero timeout', 'r:timeout0', { ...base, http: { ...base.http, timeoutMs: 0 } }, /timeoutMs/],
      ['a timeout over 60 s', 'r:timeout', { ...base, http: { ...base.http, timeoutMs: 60_001 } }, /timeoutMs/],
      ['a placeholder in the host', 'r:host', { ...base, http: { method: 'GET', url: 'http://{host}.example.com/x' } }, /./],
      ['a relative URL', 'r:relative', { ...base, http: { method: 'GET', url: '/users' } }, /absolute/],
      ['a bad name', 'bad name', base, /./]
    ]
    for (const [label, name, body, message] of cases) {
      const res = await put(encodeURIComponent(name), body)
      t.equal(res.statusCode, 400, `${label}: 400`)
      t.match(res.json().error + ' ' + String(res.json().message), message, label)
      if (name !== 'data:query') t.equal((await app.inject({ method: 'GET', url: `/admin/tools/${encodeURIComponent(name)}`, headers: admin })).statusCode, name === 'bad name' ? 400 : 404, `${label}: nothing stored`)
    }
    t.equal((await app.inject({ method: 'PUT', url: '/admin/tools/r:x', headers: bearer(tokenFor({ tenantId: uniqueTenantId('nonadmin') })), payload: base })).statusCode, 403, 'admin only')
  })

  t.test('admin routes: stored with defaults, listed, read, versioned, deleted', async (t) => {
    const body = { description: 'Read a user', argsSchema: { type: 'object', properties: { id: { type: 'string' } } }, http: { method: 'GET', url: `${upstream.origin}/users/{id}` } }
    const first = await put('a:user', body)
    t.equal(first.statusCode, 200)
    t.match(first.json(), { name: 'a:user', description: 'Read a user', resultSchema: null, defaultEnabled: false, version: 1, http: { method: 'GET', timeoutMs: 10000, maxResponseKB: 1024 } })
    t.equal((await put('a:user', { ...body, description: 'Read one user' })).json().version, 2)
    const list = await app.inject({ method: 'GET', url: '/admin/tools', headers: admin })
    t.ok(list.json().tools.some((tool: { name: string, description: string }) => tool.name === 'a:user' && tool.description === 'Read one user'))
    t.equal((await app.inject({ method: 'GET', url: '/admin/tools/a:user', headers: admin })).json().version, 2)
    t.equal((await app.inject({ method: 'DELETE', url: '/admin/tools/a:user', headers: admin })).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: '/admin/tools/a:user', headers: admin })).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: '/admin/tools/a:user', headers: admin })).statusCode, 404)
  })

  t.test('permissions and per-tenant settings apply as for built-ins', async (t) => {
    const res0 = await put('p:off', { description: 'off by default', argsSchema: OBJECT, http: { method: 'GET', url: `${upstream.origin}/users/1` } })
    t.equal(res0.json().defaultEnabled, false)
    const outsider = await createTenant(app, 'ptool-noperm', { permissions: [] })
    const tenant = await createTenant(app, 'ptool-settings', { permissions: ['tool:p:off'] })
    const attempt = "try { return await callTool('p:off', {}) } catch (e) { return e.code + ': ' + e.message }"
    t.equal((await outsider.execute(attempt)).json().value, "PERMISSION_DENIED: Permission denied: tool:p:off is not among this token's permissions; ask for a token that carries it")
    t.equal((await tenant.execute(attempt)).json().value, 'TOOL_DISABLED: Tool disabled: p:off is turned off for this tenant; an admin can enable it (PUT `/admin/tenants/{tenantId}/tools/p:off`)')
    const listed = (await app.inject({ method: 'GET', url: '/api/tools', headers: tenant.headers })).json().tools.find((tool: { name: string }) => tool.name === 'p:off')
    t.match(listed, { enabled: false, permitted: true })
    const setting = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/p:off`, headers: admin, payload: { enabled: true, rateLimit: { calls: 1, windowMs: 60_000 } } })
    t.equal(setting.statusCode, 200)
    const twice = await tenant.execute(`
      const first = await callTool('p:off', {})
      try { await callTool('p:off', {}) } catch (e) { return { first, second: e.code } }
    `)
    t.same(twice.json().value, { first: { id: '1', name: 'Ada' }, second: 'TOOL_RATE_LIMITED' })
    const neighbour = await createTenant(app, 'ptool-settings-other', { permissions: ['tool:p:off'] })
    t.equal((await neighbour.execute(attempt)).json().value, 'TOOL_DISABLED: Tool disabled: p:off is turned off for this tenant; an admin can enable it (PUT `/admin/tenants/{tenantId}/tools/p:off`)', 'the setting is that tenant\'s own')
    t.equal((await app.inject({ method: 'DELETE', url: '/admin/tools/p:off', headers: admin })).statusCode, 204)
    t.equal((await tenant.execute(attempt)).json().value, 'TOOL_NOT_FOUND: Tool not found: p:off (no tool this token may call has a similar name; GET `/api/tools` lists them)')
  })

  t.test('tool-call audit: every call in order with its outcome; other tenants see nothing', async (t) => {
    await define('au:ok', { method: 'GET', url: `${upstream.origin}/users/{id}` })
    await define('au:fail', { method: 'GET', url: `${upstream.origin}/status/500` })
    const tenant = await createTenant(app, 'ptool-audit', { permissions: ['tool:au:ok', 'tool:au:fail'] })
    const other = await createTenant(app, 'ptool-audit-other', { permissions: [] })
    const res = await tenant.execute(`
      const out = [await callTool('au:ok', { id: '7' })]
      for (const name of ['au:denied', 'au:fail']) {
        try { await callTool(name, {}) } catch (e) { out.push(e.code) }
      }
      return out
    `)
    const { executionId, value } = res.json()
    // au:denied is no tool's name: TOOL_NOT_FOUND (PERMISSION_DENIED is for a tool that exists).
    t.same(value, [{ id: '7', name: 'Ada' }, 'TOOL_NOT_FOUND', 'TOOL_ERROR'])
    await app.audit.flush()
    const audit = await app.inject({ method: 'GET', url: `/api/audit/${executionId as string}`, headers: tenant.headers })
    t.equal(audit.statusCode, 200)
    const body = audit.json()
    t.match(body.entry, { executionId, success: true, toolCalls: 3 })
    t.same(body.toolCalls.map((c: Record<string, unknown>) => [c.callIndex, c.tool, c.code, c.upstreamStatus]), [
      [0, 'au:ok', 'OK', 200],
      [1, 'au:denied', 'TOOL_NOT_FOUND', null],
      [2, 'au:fail', 'TOOL_ERROR', 500]
    ])
    t.match(body.toolCalls[0], { argsBytes: Buffer.byteLength('{"id":"7"}'), argsSha256: /^[0-9a-f]{64}$/, resultBytes: Buffer.byteLength('{"id":"7","name":"Ada"}') })
    const foreign = await app.inject({ method: 'GET', url: `/api/audit/${executionId as string}`, headers: other.headers })
    t.equal(foreign.statusCode, 404)
    t.same(foreign.json(), { error: `No audit entry for execution ${executionId as string}`, code: 'NOT_FOUND' })
  })

  t.test('a tool deleted and defined again is checked against its new schema, never the old one', async (t) => {
    // Re-creating a tool restarts its version at 1: a validator cached by name and version let
    // the old, loose schema pass arguments the new one forbids.
    await define('re:item', { method: 'GET', url: `${upstream.origin}/items/{id}` })
    const tenant = await createTenant(app, 'ptool-redefine', { permissions: ['tool:re:item'] })
    const hostile = "try { return await callTool('re:item', { id: '../../admin', evil: 1 }) } catch (e) { return e.code + ': ' + e.message }"
    const before = upstream.seen.length
    t.equal((await tenant.execute(hostile)).json().success, true, 'the loose schema lets it through')
    t.equal(upstream.seen.length, before + 1)
    t.equal((await app.inject({ method: 'DELETE', url: '/admin/tools/re:item', headers: admin })).statusCode, 204)
    await define('re:item', { method: 'GET', url: `${upstream.origin}/items/{id}` }, {
      argsSchema: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]+$' } }, required: ['id'], additionalProperties: false }
    })
    const stored = (await app.inject({ method: 'GET', url: '/admin/tools/re:item', headers: admin })).json()
    t.equal(stored.version, 1, 'the re-created tool starts at version 1 again')
    const refused = await tenant.execute(hostile)
    t.match(refused.json().value, /^TOOL_ERROR: Invalid arguments for re:item: args/, 'the new schema refuses it')
    t.equal(upstream.seen.length, before + 1, 'and nothing reached the upstream')
  })

  t.test('code-bearing schema keywords are dropped at registration and never reach tools.d.ts', async (t) => {
    const argsSchema = {
      type: 'object',
      tsType: 'string; export const injected = 1; interface Evil { x: 1 }',
      properties: {
        // A property may be named like a keyword: it stays.
        tsType: { type: 'string', description: 'closes */ export const escaped = 2 /* its comment' },
        mode: { type: 'string', enum: ['a', 'b'], tsEnumNames: ['A = 1; export const e = 3; //', 'B'] }
      }
    }
    await define('ts:tool', { method: 'GET', url: `${upstream.origin}/users/{id}` }, { argsSchema, resultSchema: { type: 'object', tsType: 'never; export const r = 4' } })
    const stored = (await app.inject({ method: 'GET', url: '/admin/tools/ts:tool', headers: admin })).json()
    t.same(stored.argsSchema, {
      type: 'object',
      properties: {
        tsType: { type: 'string', description: 'closes */ export const escaped = 2 /* its comment' },
        mode: { type: 'string', enum: ['a', 'b'] }
      }
    }, 'stored without tsType or tsEnumNames; a property named tsType is kept')
    t.same(stored.resultSchema, { type: 'object' })
    const tenant = await createTenant(app, 'ptool-tstype', { permissions: ['tool:ts:tool'] })
    const dts = (await app.inject({ method: 'GET', url: '/api/tools.d.ts', headers: tenant.headers })).body
    t.match(dts, /callTool \(name: "ts:tool"/)
    for (const code of ['injected =', 'interface Evil', 'export const e =', 'export const r =']) t.notOk(dts.includes(code), `no "${code}" in the declarations`)
    t.notOk(dts.includes('*/ export const escaped'), 'a description cannot close its comment')
    t.ok(dts.includes('closes *\\/ export const escaped = 2'), 'it stays readable, escaped')
    t.notOk(/^\s*export const/m.test(dts), 'no export const anywhere')
  })

  t.test('50 concurrent runs of 10 HTTP calls each all succeed over reused connections', async (t) => {
    await define('c:get', { method: 'GET', url: `${upstream.origin}/users/{id}` })
    const tenant = await createTenant(app, 'ptool-load', { tier: 'enterprise', permissions: ['tool:c:get'], quotaOverrides: { maxConcurrentExecutions: 50, maxToolCallsPerDay: 100_000, maxExecutionsPerDay: 100_000 } })
    const connectionsBefore = upstream.connections()
    const runs = await Promise.all(Array.from({ length: 50 }, async (_, run) => await tenant.execute(`
      const ids = []
      for (let i = 0; i < 10; i++) ids.push((await callTool('c:get', { id: '${run}-' + i })).id)
      return ids
    `, { timeoutMs: 60_000 })))
    t.equal(runs.filter((r) => r.json().success === true).length, 50, 'all 50 runs succeed')
    t.same(runs[7]?.json().value, Array.from({ length: 10 }, (_, i) => `7-${i}`))
    const opened = upstream.connections() - connectionsBefore
    t.ok(opened <= 64, `500 calls over ${opened} new connections (the pool keeps at most 64 per upstream)`)
  })
})

t.test('withoutCodeKeywords walks every subschema and keeps data as written', async (t) => {
  const { withoutCodeKeywords } = await import('../../services/tools/schema-validation.ts')
  const data = { tsType: 'kept: this is a const value, not a keyword' }
  t.same(withoutCodeKeywords({
    tsType: 'x',
    $defs: { a: { tsType: 'x', type: 'string' } },
    anyOf: [{ tsType: 'x' }, { items: { tsType: 'x' } }],
    items: [{ tsEnumNames: ['A'] }],
    additionalProperties: { not: { tsType: 'x' } },
    const: data,
    default: data
  }), {
    $defs: { a: { type: 'string' } },
    anyOf: [{}, { items: {} }],
    items: [{}],
    additionalProperties: { not: {} },
    const: data,
    default: data
  })
})
