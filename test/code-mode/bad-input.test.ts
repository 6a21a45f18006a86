import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'

t.test('bad input to /api/execute and /api/execute/check', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'bad-input', { tier: 'enterprise' })
  const post = async (url: string, payload: unknown) => await app.inject({ method: 'POST', url, headers: tenant.headers, payload: payload as Record<string, unknown> })
  const usage = async () => (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().executions

  t.test('empty code, an unknown language: 400 with a message, nothing counted', async (t) => {
    const before = await usage()
    for (const url of ['/api/execute', '/api/execute/check']) {
      for (const body of [{ code: '' }, { code: 'return 1', language: 'python' }, { code: 'return 1', language: 'TypeScript' }]) {
        const res = await post(url, body)
        t.equal(res.statusCode, 400, `${url} ${JSON.stringify(body)}`)
        t.match(res.json(), { error: 'Bad Request', code: 'BAD_REQUEST', message: /^(code must not be empty|language must be one of: javascript, typescript)$/ })
      }
    }
    t.equal(await usage(), before)
  })

  t.test('10 MB of code: 413 before parsing', async (t) => {
    const code = `return ${'('.repeat(5 * 1024 * 1024)}${')'.repeat(5 * 1024 * 1024)}`
    for (const url of ['/api/execute', '/api/execute/check']) {
      const res = await post(url, { code, language: 'typescript' })
      t.equal(res.statusCode, 413, url)
      t.match(res.json(), { code: 'BODY_TOO_LARGE' })
    }
  })

  t.test('code over maxCodeSizeKB but under the body limit: 413 with the limit', async (t) => {
    const code = `return '${'x'.repeat(501 * 1024)}'`
    const check = await post('/api/execute/check', { code })
    t.equal(check.statusCode, 413)
    t.same(check.json(), { error: 'Code size limit exceeded (500 KB)', code: 'CODE_TOO_LARGE', limit: 500 })
    const run = await post('/api/execute', { code })
    t.same(run.json(), check.json())
  })

  t.test('100,000 nested parentheses: a clean VALIDATION_ERROR, and the service goes on', async (t) => {
    const deep = `return ${'('.repeat(100_000)}1${')'.repeat(100_000)}`
    const bangs = `return ${'!'.repeat(100_000)}1`
    // acorn catches its own stack overflow and says where it ran out of stack (which depends on
    // the stack left, so a check and a run may name different columns); amaro's overflow is
    // caught around it, and its WebAssembly instance replaced.
    const message = { javascript: /^SyntaxError: Not enough stack space to parse input \(line 1, column \d+\)$/, typescript: /^SyntaxError: Code is nested too deeply to parse \(line 1, column 1\)$/ }
    for (const language of ['javascript', 'typescript'] as const) {
      for (const code of [deep, bangs]) {
        const check = await post('/api/execute/check', { code, language })
        t.equal(check.statusCode, 200)
        t.match(check.json(), { ok: false, errors: [{ code: 'VALIDATION_ERROR', message: message[language], line: 1 }], toolCalls: [], dynamicToolCalls: 0 }, `check, ${language}`)
        t.equal(check.json().errors.length, 1)
        const run = await post('/api/execute', { code, language })
        t.equal(run.statusCode, 200)
        t.match(run.json(), { success: false, error: { name: 'ValidationError', code: 'VALIDATION_ERROR', message: message[language] } }, `run, ${language}`)
      }
    }
    // The stripper survived (a broken WebAssembly instance would fail every later script).
    const after = await post('/api/execute', { code: 'const x: number = 41\nreturn x + 1', language: 'typescript' })
    t.match(after.json(), { success: true, value: 42 })
  })
})
