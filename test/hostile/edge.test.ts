import t from 'tap'
import { auditEntry, buildApp, sharedApp, bearer, createTenant, uniqueTenantId, TEST_SECRET } from '../helper.ts'
import { signToken } from '../../services/tokens.ts'

// The HTTP edge as a hostile client or a curious tenant meets it (issue 10 item 7, issue 9 item 5).

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const invalidToken = (reason: string, claim?: string) => ({ code: 'INVALID_TOKEN', reason, ...(claim !== undefined ? { claim } : {}) })
const METRICS_INVALID = { error: 'The bearer token is not this service\'s METRICS_TOKEN: send Authorization: Bearer <METRICS_TOKEN>', code: 'INVALID_TOKEN' }
const UNAUTHORIZED = { error: 'Unauthorized: send Authorization: Bearer <token>', code: 'UNAUTHORIZED' }

// The tests on the default configuration share one app (sharedApp); the others build theirs
// with the settings they test.

t.test('audit ids reveal nothing about other tenants', async (t) => {
  const app = await sharedApp()
  const a = await createTenant(app, 'ids-a')
  const b = await createTenant(app, 'ids-b')
  const entry = (tenantId: string, executionId: string) => auditEntry(tenantId, executionId)
  // A, then three of B's runs, then A again: with one shared sequence A's two ids were 4 apart.
  for (const [tenant, id] of [[a, 'a1'], [b, 'b1'], [b, 'b2'], [b, 'b3'], [a, 'a2']] as const) {
    app.audit.enqueue(entry(tenant.tenantId, id))
    await app.audit.flush()
  }
  const list = async (headers: { authorization: string }, query = '') =>
    (await app.inject({ method: 'GET', url: `/api/audit${query}`, headers })).json() as { entries: Array<{ id: string, executionId: string }>, nextBefore: string | null }
  const ofA = (await list(a.headers)).entries
  const ofB = (await list(b.headers)).entries
  t.same(ofA.map((e) => e.executionId), ['a2', 'a1'])
  for (const e of [...ofA, ...ofB]) t.match(e.id, UUID, `${e.executionId}'s id is a random UUID, not a counter`)
  t.equal(new Set([...ofA, ...ofB].map((e) => e.id)).size, 5, 'ids are distinct')

  const page = await list(a.headers, '?limit=1')
  t.same(page.entries.map((e) => e.executionId), ['a2'])
  t.equal(page.nextBefore, ofA[0]?.id, 'nextBefore is the public id')
  t.same((await list(a.headers, `?limit=1&before=${page.nextBefore as string}`)).entries.map((e) => e.executionId), ['a1'])
  t.same((await list(a.headers, `?before=${ofB[0]?.id as string}`)).entries, [], 'another tenant\'s id is no cursor')
  const numeric = await app.inject({ method: 'GET', url: '/api/audit?before=1', headers: a.headers })
  t.equal(numeric.statusCode, 400, 'a sequence number is not an id any more')
  t.equal(numeric.json().code, 'BAD_REQUEST')
})

t.test('tokens: exp required by default, iss and aud when configured', async (t) => {
  const tenantId = uniqueTenantId('claims')
  const mint = (extra: Record<string, unknown>, ttl: number | null = 600): string =>
    signToken({ tenantId, userId: 'u', permissions: [], ...extra }, { secret: TEST_SECRET }, ttl)
  const usage = async (app: Awaited<ReturnType<typeof buildApp>>, token: string) =>
    await app.inject({ method: 'GET', url: '/api/usage', headers: bearer(token) })

  t.test('a token without exp is 401 by default', async (t) => {
    const app = await sharedApp()
    const res = await usage(app, mint({}, null))
    t.equal(res.statusCode, 401)
    t.match(res.json(), invalidToken('missing_claim', 'exp'))
    t.equal((await usage(app, mint({}))).statusCode, 200, 'with exp it passes')
  })

  t.test('JWT_REQUIRE_EXP=false accepts one (gateways that cannot set it)', async (t) => {
    const app = await buildApp(t, { JWT_REQUIRE_EXP: 'false' })
    t.equal((await usage(app, mint({}, null))).statusCode, 200)
    const expired = await usage(app, mint({}, -10))
    t.equal(expired.statusCode, 401, 'an exp that is there is still honoured')
    t.match(expired.json(), invalidToken('expired'))
  })

  t.test('JWT_ISSUER and JWT_AUDIENCE', async (t) => {
    const app = await buildApp(t, { JWT_ISSUER: 'https://gateway.example', JWT_AUDIENCE: 'tenant-enclave' })
    const good = { iss: 'https://gateway.example', aud: 'tenant-enclave' }
    t.equal((await usage(app, mint(good))).statusCode, 200)
    t.equal((await usage(app, mint({ ...good, aud: ['other', 'tenant-enclave'] }))).statusCode, 200, 'aud may be a list that holds ours')
    const refused: Array<[string, Record<string, unknown>, ReturnType<typeof invalidToken>]> = [
      ['another issuer', { ...good, iss: 'https://evil.example' }, invalidToken('wrong_issuer')],
      ['no issuer', { aud: good.aud }, invalidToken('missing_claim', 'iss')],
      ['another audience', { ...good, aud: 'other-service' }, invalidToken('wrong_audience')],
      ['no audience', { iss: good.iss }, invalidToken('missing_claim', 'aud')],
      ['an audience list without ours', { ...good, aud: ['a', 'b'] }, invalidToken('wrong_audience')]
    ]
    for (const [name, claims, expected] of refused) {
      const res = await usage(app, mint(claims))
      t.equal(res.statusCode, 401, name)
      t.match(res.json(), expected, name)
    }
  })
})

t.test('/metrics and /docs', async (t) => {
  t.test('open by default (development)', async (t) => {
    const app = await sharedApp()
    t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: '/docs/json' })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: '/docs' })).statusCode, 200)
  })

  t.test('METRICS_TOKEN closes /metrics', async (t) => {
    const token = 'scraper-token-0123456789'
    const app = await buildApp(t, { METRICS_TOKEN: token })
    const get = async (headers: Record<string, string>) => await app.inject({ method: 'GET', url: '/metrics', headers })
    const missing = await get({})
    t.equal(missing.statusCode, 401)
    t.same(missing.json(), UNAUTHORIZED)
    for (const authorization of [`Bearer ${token}x`, 'Bearer wrong', `Basic ${token}`, `Bearer ${token.slice(0, -1)}`]) {
      const res = await get({ authorization })
      t.equal(res.statusCode, 401, authorization)
      t.same(res.json(), METRICS_INVALID, authorization)
    }
    const ok = await get({ authorization: `Bearer ${token}` })
    t.equal(ok.statusCode, 200)
    t.match(ok.body, /tenant_enclave_executions_total/)
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
    t.same(doc.paths['/metrics'].get.security, [{ bearerAuth: [] }], 'the document says so')
  })

  t.test('DOCS_ENABLED=false removes /docs and /docs/json', async (t) => {
    const app = await buildApp(t, { DOCS_ENABLED: 'false' })
    for (const url of ['/docs', '/docs/', '/docs/json', '/docs/static/index.html']) {
      const res = await app.inject({ method: 'GET', url })
      t.equal(res.statusCode, 404, url)
      t.equal(res.json().code, 'NOT_FOUND', url)
    }
  })
})

t.test('security headers', async (t) => {
  const app = await sharedApp()
  const res = await app.inject({ method: 'GET', url: '/health' })
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  t.match(res.headers['strict-transport-security'], /max-age=\d+/)
  t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'")
  t.equal(res.headers['x-powered-by'], undefined)
  const error = await app.inject({ method: 'GET', url: '/api/usage' })
  t.equal(error.statusCode, 401)
  t.equal(error.headers['x-content-type-options'], 'nosniff', 'error responses carry them too')

  // Swagger UI still works: its page gets a CSP that lets its own scripts and styles load.
  const ui = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200)
  const csp = ui.headers['content-security-policy'] as string
  t.match(csp, /script-src 'self'/)
  t.match(csp, /style-src 'self'/)
  t.notMatch(csp, /upgrade-insecure-requests/, 'works over plain HTTP in development')
  t.match(ui.body, /<script src="\.\/static\/swagger-initializer\.js"/, 'its scripts are same-origin files, which the CSP allows')
  t.notMatch(ui.body, /<script>/, 'and none is inline')
})

t.test('CORS', async (t) => {
  const preflight = {
    method: 'OPTIONS' as const,
    url: '/api/execute',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
  }

  t.test('none by default: no CORS header at all', async (t) => {
    const app = await sharedApp()
    const res = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://app.example.com' } })
    t.equal(res.statusCode, 200)
    t.same(Object.keys(res.headers).filter((h) => h.startsWith('access-control-')), [])
    const pre = await app.inject(preflight)
    t.equal(pre.statusCode, 404, 'no preflight route')
    t.same(Object.keys(pre.headers).filter((h) => h.startsWith('access-control-')), [])
  })

  t.test('CORS_ORIGINS: a listed origin gets the headers, preflight works; others get none', async (t) => {
    const app = await buildApp(t, { CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' })
    const tenant = await createTenant(app, 'cors')
    const pre = await app.inject(preflight)
    t.equal(pre.statusCode, 204)
    t.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com')
    t.match(pre.headers['access-control-allow-methods'], /POST/)
    t.match(pre.headers['access-control-allow-headers'], /authorization/)
    t.equal(pre.headers['access-control-allow-credentials'], undefined, 'no credentials: tokens are not cookies')

    const get = await app.inject({ method: 'GET', url: '/api/usage', headers: { ...tenant.headers, origin: 'http://localhost:5173' } })
    t.equal(get.statusCode, 200)
    t.equal(get.headers['access-control-allow-origin'], 'http://localhost:5173')
    t.match(get.headers['access-control-expose-headers'], /retry-after/)

    const other = await app.inject({ method: 'GET', url: '/api/usage', headers: { ...tenant.headers, origin: 'https://evil.example' } })
    t.equal(other.headers['access-control-allow-origin'], undefined)
    const otherPre = await app.inject({ ...preflight, headers: { ...preflight.headers, origin: 'https://evil.example' } })
    t.equal(otherPre.headers['access-control-allow-origin'], undefined)
  })
})

t.test('Fastify\'s own client errors have their own codes', async (t) => {
  const app = await buildApp(t, { BODY_LIMIT_BYTES: '1048576' })
  const tenant = await createTenant(app, 'fst')
  const tooLarge = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': 'application/json' }, payload: JSON.stringify({ code: 'x'.repeat(5 * 1024 * 1024) }) })
  t.equal(tooLarge.statusCode, 413)
  t.same(tooLarge.json(), { error: 'Request body is too large: at most 1048576 bytes (BODY_LIMIT_BYTES)', code: 'BODY_TOO_LARGE', limit: 1048576 })

  const wrongType = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': 'application/xml' }, payload: '<code>return 1</code>' })
  t.equal(wrongType.statusCode, 415)
  t.same(wrongType.json(), { error: 'Unsupported Media Type: send Content-Type: application/json (application/xml was sent)', code: 'UNSUPPORTED_MEDIA_TYPE' })

  const badJson = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, 'content-type': 'application/json' }, payload: '{"code":' })
  t.equal(badJson.statusCode, 400)
  t.equal(badJson.json().code, 'BAD_REQUEST', 'the rest stay BAD_REQUEST')
})
