import t from 'tap'
import { buildApp, createTenant, adminHeaders } from '../helper.ts'

t.test('POST /api/execute/check', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'check', { permissions: ['tool:data:query', 'tool:data:insert', 'tool:data:delete', 'tool:ghost'] })
  const put = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:delete`, headers: adminHeaders(), payload: { enabled: false } })
  t.equal(put.statusCode, 200)
  const check = async (code: string, language?: string) => await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code, ...(language !== undefined ? { language } : {}) } })

  t.test('a clean script: ok, its tool calls with where they are', async (t) => {
    const res = await check("const docs = await callTool('data:query', { limit: 1 })\n  await callTool(`data:insert`, { document: {} })\nreturn docs")
    t.equal(res.statusCode, 200)
    t.same(res.json(), {
      ok: true,
      errors: [],
      toolCalls: [
        { name: 'data:query', line: 1, column: 20, exists: true, enabled: true, permitted: true },
        { name: 'data:insert', line: 2, column: 9, exists: true, enabled: true, permitted: true }
      ],
      dynamicToolCalls: 0
    })
  })

  t.test('a syntax error: the run\'s message, line and column', async (t) => {
    const res = await check('const a = 1\nreturn (')
    const run = await tenant.execute('const a = 1\nreturn (')
    t.same(res.json(), { ok: false, errors: [{ code: 'VALIDATION_ERROR', message: run.json().error.message, line: 2, column: 9 }], toolCalls: [], dynamicToolCalls: 0 })
    t.equal(run.json().error.message, 'SyntaxError: Unexpected token (line 2, column 9)')
  })

  t.test('forbidden constructs: every one, the first being what a run says', async (t) => {
    const code = "const a = 1\nconst f = a.constructor\nwith (a) {}\nreturn eval('1')"
    const res = await check(code)
    const body = res.json()
    t.equal(body.ok, false)
    t.same(body.errors.map((e: { line: number, column: number, code: string }) => [e.code, e.line, e.column]), [['VALIDATION_ERROR', 2, 11], ['VALIDATION_ERROR', 3, 1], ['VALIDATION_ERROR', 4, 8]])
    const run = await tenant.execute(code)
    t.same(run.json().error, { name: 'ValidationError', code: 'VALIDATION_ERROR', message: body.errors[0].message })
    t.equal(body.errors[0].message, 'Forbidden construct: access to `constructor` is not allowed (line 2, column 11)')
  })

  t.test('unknown, disabled and unpermitted tools: not ok, with the refusal a run would meet', async (t) => {
    const res = await check("await callTool('ghost', {})\nawait callTool('data:delete', { filter: {} })\nawait callTool('data:update', { filter: {}, set: {} })")
    t.same(res.json(), {
      ok: false,
      errors: [
        { code: 'TOOL_NOT_FOUND', message: 'Tool not found: ghost (no tool this token may call has a similar name; GET `/api/tools` lists them) (line 1, column 7)', line: 1, column: 7 },
        { code: 'TOOL_DISABLED', message: 'Tool disabled: data:delete is turned off for this tenant; an admin can enable it (PUT `/admin/tenants/{tenantId}/tools/data:delete`) (line 2, column 7)', line: 2, column: 7 },
        { code: 'PERMISSION_DENIED', message: "Permission denied: tool:data:update is not among this token's permissions; ask for a token that carries it (line 3, column 7)", line: 3, column: 7 }
      ],
      toolCalls: [
        { name: 'ghost', line: 1, column: 7, exists: false, enabled: false, permitted: true },
        { name: 'data:delete', line: 2, column: 7, exists: true, enabled: false, permitted: true },
        { name: 'data:update', line: 3, column: 7, exists: true, enabled: true, permitted: false }
      ],
      dynamicToolCalls: 0
    })
    // What the run meets, in the same words.
    const run = await tenant.execute("const out = []\nfor (const n of ['ghost', 'data:delete', 'data:update']) { try { await callTool(n, { filter: {}, set: {} }) } catch (e) { out.push([e.code, e.message]) } }\nreturn out")
    t.same(run.json().value, [['TOOL_NOT_FOUND', 'Tool not found: ghost (no tool this token may call has a similar name; GET `/api/tools` lists them)'], ['TOOL_DISABLED', 'Tool disabled: data:delete is turned off for this tenant; an admin can enable it (PUT `/admin/tenants/{tenantId}/tools/data:delete`)'], ['PERMISSION_DENIED', "Permission denied: tool:data:update is not among this token's permissions; ask for a token that carries it"]])
  })

  t.test('dynamic names are counted, not listed; they alone do not fail the check', async (t) => {
    // eslint-disable-next-line no-template-curly-in-string -- the script's own template literal
    const res = await check("const name = 'data:' + 'query'\nawait callTool(name, {})\nawait callTool(`data:${'query'}`, {})\nconst alias = callTool\nawait alias('data:update', {})\nawait callTool.call(null, 'data:query', {})\nreturn await callTool('data:query', {})")
    t.same(res.json(), {
      ok: true,
      errors: [],
      toolCalls: [{ name: 'data:query', line: 7, column: 14, exists: true, enabled: true, permitted: true }],
      dynamicToolCalls: 4
    })
  })

  t.test('TypeScript is checked after stripping, with the source\'s positions', async (t) => {
    const ok = await check("interface Q { limit: number }\nconst q: Q = { limit: 2 }\nreturn await callTool('data:query', q as Q)", 'typescript')
    t.same(ok.json(), { ok: true, errors: [], toolCalls: [{ name: 'data:query', line: 3, column: 14, exists: true, enabled: true, permitted: true }], dynamicToolCalls: 0 })
    const en = await check('const a = 1\nenum E { A }', 'typescript')
    t.match(en.json(), { ok: false, errors: [{ code: 'VALIDATION_ERROR', message: /^Unsupported TypeScript: TypeScript enum .* \(line 2, column 1\)$/, line: 2, column: 1 }], toolCalls: [], dynamicToolCalls: 0 })
    const js = await check('const a: number = 1', 'javascript')
    t.match(js.json(), { ok: false, errors: [{ code: 'VALIDATION_ERROR', line: 1, column: 8 }] })
  })

  t.test('20 checks consume no quota and write no audit row', async (t) => {
    const quiet = await createTenant(app, 'check-quiet', { tier: 'free' })
    await quiet.execute("return await callTool('data:query', {})")
    await app.audit.flush()
    const usage = async () => (await app.inject({ method: 'GET', url: '/api/usage', headers: quiet.headers })).json()
    const audit = async () => (await app.inject({ method: 'GET', url: '/api/audit', headers: quiet.headers })).json().entries
    const [usageBefore, auditBefore] = [await usage(), await audit()]
    t.equal(usageBefore.executions, 1)
    t.equal(auditBefore.length, 1)
    for (let i = 0; i < 20; i++) {
      const res = await app.inject({ method: 'POST', url: '/api/execute/check', headers: quiet.headers, payload: { code: i % 2 === 0 ? "return await callTool('data:query', {})" : 'return (' } })
      t.equal(res.statusCode, 200)
    }
    await app.audit.flush()
    t.same(await usage(), usageBefore)
    t.same(await audit(), auditBefore)
  })
})

t.test('the per-minute rate limit applies to checks', async (t) => {
  const app = await buildApp(t, { RATE_LIMIT_PER_MINUTE: '3' })
  const tenant = await createTenant(app, 'check-rate')
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code: 'return 1' } })).statusCode)
  t.same(statuses, [200, 200, 200, 429])
})
