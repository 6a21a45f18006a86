// Property-based: whatever a client sends, it gets a 4xx with a message (or a 200 for a valid
// script), never a 5xx; nothing is polluted; the service keeps serving.
import t from 'tap'
import fc from 'fast-check'
import { buildApp, createTenant, adminHeaders, TEST_SECRET } from '../helper.ts'
import { signToken } from '../../services/tokens.ts'

const RUNS = 40

t.test('hostile input', async (t) => {
  const app = await buildApp(t, { BODY_LIMIT_BYTES: String(64 * 1024) })
  const tenant = await createTenant(app, 'hostile', { tier: 'enterprise' })
  const admin = adminHeaders()
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort()

  const expectClientError = (t: { ok: (v: boolean, m: string) => void, type: (v: unknown, k: string, m: string) => void }, res: { statusCode: number, body: string }, label: string): void => {
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${label}: ${res.statusCode} is a 4xx`)
    const body = JSON.parse(res.body) as { error?: unknown }
    t.type(body.error, 'string', `${label}: has a message`)
  }

  t.test('arbitrary JSON bodies on every writing route', async (t) => {
    await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => {
      const payload = JSON.stringify(value)
      for (const [method, url, headers] of [
        ['POST', '/api/execute', tenant.headers],
        ['PUT', `/admin/tenants/${tenant.tenantId}-x`, admin],
        ['PUT', `/admin/tenants/${tenant.tenantId}/tools/data:query`, admin]
      ] as const) {
        const res = await app.inject({ method, url, headers: { ...headers, 'content-type': 'application/json' }, payload })
        if (res.statusCode >= 500) throw new Error(`${method} ${url} ${payload} → ${res.statusCode} ${res.body}`)
      }
    }), { numRuns: RUNS })
    t.pass('no 5xx')
  })

  t.test('malformed JSON text is a 400', async (t) => {
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 200 }), async (text) => {
      let valid = true
      try { JSON.parse(text) } catch { valid = false }
      fc.pre(!valid)
      const res = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': 'application/json' }, payload: text })
      if (res.statusCode !== 400) throw new Error(`${JSON.stringify(text)} → ${res.statusCode}`)
    }), { numRuns: RUNS })
    t.pass('all 400')
  })

  t.test('specific hostile bodies', async (t) => {
    const cases: Array<[string, string | Buffer, string?]> = [
      ['__proto__ key', '{"code":"return 1","__proto__":{"polluted":true}}'],
      ['constructor.prototype key', '{"code":"return 1","constructor":{"prototype":{"polluted":true}}}'],
      ['deep nesting', '{"code":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}'],
      ['huge body', JSON.stringify({ code: 'x'.repeat(100 * 1024) })],
      ['invalid UTF-8', Buffer.concat([Buffer.from('{"code":"return \''), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('\'"}')])],
      ['timeoutMs out of range', '{"code":"return 1","timeoutMs":1e309}'],
      ['timeoutMs negative', '{"code":"return 1","timeoutMs":-5}'],
      ['unknown field', '{"code":"return 1","admin":true}'],
      ['empty body', ''],
      ['wrong content type', 'code=return 1', 'application/x-www-form-urlencoded'],
      ['text/plain', 'return 1', 'text/plain'],
      ['xml', '<code>return 1</code>', 'application/xml']
    ]
    for (const [label, payload, contentType] of cases) {
      const res = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': contentType ?? 'application/json' }, payload })
      expectClientError(t, res, label)
    }
    const huge = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': 'application/json' }, payload: JSON.stringify({ code: 'x'.repeat(100 * 1024) }) })
    t.equal(huge.statusCode, 413, 'a body over BODY_LIMIT_BYTES is 413')
  })

  t.test('arbitrary Authorization headers and tokens are 401', async (t) => {
    const tokenish = fc.oneof(
      fc.string({ maxLength: 300 }).map((s) => `Bearer ${s}`),
      fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map(([a, b, c]) => `Bearer ${a}.${b}.${c}`),
      fc.record({ tenantId: fc.string(), userId: fc.anything(), permissions: fc.anything() })
        .map((claims) => `Bearer ${signToken(claims as never, { secret: TEST_SECRET })}`),
      fc.string({ maxLength: 100 })
    )
    await fc.assert(fc.asyncProperty(tokenish, async (authorization) => {
      const res = await app.inject({ method: 'GET', url: '/api/usage', headers: { authorization } })
      const tenantIdValid = (() => {
        try {
          const payload = JSON.parse(Buffer.from(authorization.split('.')[1] ?? '', 'base64url').toString()) as { tenantId?: unknown, userId?: unknown, permissions?: unknown }
          return typeof payload.tenantId === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(payload.tenantId) &&
            typeof payload.userId === 'string' && payload.userId.length > 0 && Array.isArray(payload.permissions) && payload.permissions.every((p) => typeof p === 'string' && p.length > 0)
        } catch { return false }
      })()
      if (tenantIdValid) return
      if (res.statusCode !== 401) throw new Error(`${authorization} → ${res.statusCode} ${res.body}`)
    }), { numRuns: RUNS })
    t.pass('all 401')
  })

  t.test('nothing was polluted and the service keeps serving', async (t) => {
    t.same(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeKeys)
    t.equal(({} as Record<string, unknown>).polluted, undefined)
    t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
    const res = await tenant.execute('return 40 + 2')
    t.equal(res.json().value, 42)
  })
})
