import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'

t.test('language: typescript on /api/execute', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'ts', { tier: 'starter' })

  t.test('a script with TS-only syntax returns what its JavaScript twin returns', async (t) => {
    const typescript = `
      interface Order { id: number, total: number, note?: string }
      type Summary<T> = { count: number, items: T[] }
      function summarise<T extends { total: number }> (items: T[]): Summary<T> {
        return { count: items.length, items }
      }
      const orders = [{ id: 1, total: 5 }, { id: 2, total: 7 }] as Order[]
      const config = { currency: 'EUR' } satisfies Record<string, string>
      const first: Order | undefined = orders.find((o) => o.id === 2)
      const doc = await callTool('data:insert', { document: { kind: 'ts' } }) as { id: string }
      console.log(first!.total, config.currency)
      return { summary: summarise<Order>(orders), total: first!.total, stored: typeof doc.id }
    `
    const javascript = `
      function summarise (items) {
        return { count: items.length, items }
      }
      const orders = [{ id: 1, total: 5 }, { id: 2, total: 7 }]
      const config = { currency: 'EUR' }
      const first = orders.find((o) => o.id === 2)
      const doc = await callTool('data:insert', { document: { kind: 'ts' } })
      console.log(first.total, config.currency)
      return { summary: summarise(orders), total: first.total, stored: typeof doc.id }
    `
    const ts = (await tenant.execute(typescript, { language: 'typescript' })).json()
    const js = (await tenant.execute(javascript, { language: 'javascript' })).json()
    t.equal(ts.success, true, JSON.stringify(ts.error))
    t.same(ts.value, js.value)
    t.same(ts.value, { summary: { count: 2, items: [{ id: 1, total: 5 }, { id: 2, total: 7 }] }, total: 7, stored: 'string' })
    t.same(ts.logs, [{ level: 'log', message: '7 EUR' }])
    t.same(ts.logs, js.logs)
  })

  t.test('a syntax error on line 7 of a TS script reports line 7 and its column', async (t) => {
    const code = [
      'interface A { a: number }',
      'const a: A = { a: 1 }',
      '',
      'type B = string',
      'const b: B = "x"',
      'const c = a.a as number',
      'const d: number = ;',
      'return d'
    ].join('\n')
    const res = await tenant.execute(code, { language: 'typescript' })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.match(body, { success: false, error: { name: 'ValidationError', code: 'VALIDATION_ERROR' }, logs: [], stats: { toolCallCount: 0 } })
    t.match(body.error.message, /^SyntaxError: .* \(line 7, column 19\)$/)
  })

  t.test('a STRICT violation after stripping points at the TS source', async (t) => {
    const res = await tenant.execute('const x: number = 1\nconst f: unknown = eval', { language: 'typescript' })
    t.same(res.json().error, { name: 'ValidationError', code: 'VALIDATION_ERROR', message: 'Forbidden construct: `eval` is not allowed (line 2, column 20)' })
  })

  t.test('a runtime error keeps the TS line', async (t) => {
    const res = await tenant.execute('const s: string = "a"\n\nthrow new Error(s as string)', { language: 'typescript' })
    t.match(res.json(), { success: false, error: { code: 'EXECUTION_ERROR', message: /a/ } })
  })

  t.test('TS that cannot be erased is VALIDATION_ERROR naming the construct and its position', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['const x = 1\n  enum Colour { Red, Green }\nreturn Colour.Red', /^Unsupported TypeScript: TypeScript enum is not supported \(only type annotations can be erased\) \(line 2, column 3\)$/],
      ['namespace N { export const a = 1 }\nreturn N.a', /^Unsupported TypeScript: TypeScript namespace declaration is not supported .* \(line 1, column 1\)$/],
      ['class P {\n  constructor (private x: number) {}\n}\nreturn 1', /^Unsupported TypeScript: TypeScript parameter property is not supported .* \(line 2, column 24\)$/] // swc points at the parameter
    ]
    for (const [code, message] of cases) {
      const res = await tenant.execute(code, { language: 'typescript' })
      t.equal(res.statusCode, 200)
      t.match(res.json(), { success: false, error: { name: 'ValidationError', code: 'VALIDATION_ERROR', message } }, code)
    }
  })

  t.test('a TS refusal counts and is audited like a JavaScript syntax error', async (t) => {
    const counted = await createTenant(app, 'ts-count', { tier: 'starter' })
    await counted.execute('return (', {})
    await counted.execute('enum E { A }', { language: 'typescript' })
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: counted.headers })).json()
    t.equal(usage.executions, 2)
    t.equal(usage.concurrentExecutions, 0, 'the slot was released')
    await app.audit.flush()
    const audit = (await app.inject({ method: 'GET', url: '/api/audit', headers: counted.headers })).json()
    t.same(audit.entries.map((e: { errorCode: string, action: string }) => [e.action, e.errorCode]), [['code_execution', 'VALIDATION_ERROR'], ['code_execution', 'VALIDATION_ERROR']])
  })

  t.test('a large script (stripped on a worker thread) runs and keeps its positions', async (t) => {
    const filler = Array.from({ length: 400 }, (_, i) => `const v${i}: Record<string, number> = { n: ${i} } as Record<string, number>`).join('\n')
    t.ok(Buffer.byteLength(filler) > 16 * 1024, 'over the inline threshold')
    const ok = await tenant.execute(`${filler}\nreturn v399.n satisfies number`, { language: 'typescript' })
    t.match(ok.json(), { success: true, value: 399 })
    const bad = await tenant.execute(`${filler}\nenum E { A }`, { language: 'typescript' })
    t.match(bad.json(), { success: false, error: { code: 'VALIDATION_ERROR', message: /TypeScript enum .* \(line 401, column 1\)$/ } })
    const check = await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { language: 'typescript', code: `${filler}\nconst f = eval\nreturn await callTool('data:query', {})` } })
    t.match(check.json(), { ok: false, errors: [{ code: 'VALIDATION_ERROR', line: 401, column: 11 }], toolCalls: [{ name: 'data:query', line: 402, column: 14 }] })
  })

  t.test('javascript is the default, and TS syntax in it is a syntax error', async (t) => {
    const res = await tenant.execute('const x: number = 1\nreturn x')
    t.match(res.json(), { success: false, error: { code: 'VALIDATION_ERROR', message: /\(line 1, column 8\)$/ } })
  })
})
