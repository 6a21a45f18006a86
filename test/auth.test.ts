import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, bearer, tokenFor, uniqueTenantId, adminHeaders, TEST_SECRET } from './helper.ts'
import { signToken } from '../services/tokens.ts'
import { TIER_QUOTAS } from '../services/tenants/tiers.ts'

// A route that shows what the auth and tenant plugins put on the request.
function contextRoute (fastify: FastifyInstance): void {
  fastify.get('/test/context', { onRequest: fastify.authenticate }, async (request) => request.tenant)
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

t.test('HS256 tokens', async (t) => {
  const app = await buildApp(t, {}, contextRoute)
  const tenantId = uniqueTenantId('auth')
  const get = async (headers: Record<string, string | undefined>) => await app.inject({ method: 'GET', url: '/test/context', headers })

  t.test('no token is 401 MISSING_TOKEN with a bare Bearer challenge', async (t) => {
    for (const headers of [{}, { authorization: '' }]) {
      const res = await get(headers)
      t.equal(res.statusCode, 401)
      t.same(res.json(), { error: 'No bearer token was sent: send the header Authorization: Bearer <token>', code: 'MISSING_TOKEN' })
      t.equal(res.headers['www-authenticate'], 'Bearer realm="tenant-enclave"')
    }
  })

  const now = Math.floor(Date.now() / 1000)
  const invalid: Array<[string, string, string, string?]> = [
    ['garbage', 'Bearer not-a-jwt', 'malformed'],
    ['wrong scheme', `Basic ${tokenFor({ tenantId })}`, 'missing_bearer_prefix'],
    ['no scheme', tokenFor({ tenantId }), 'missing_bearer_prefix'],
    ['bearer without token', 'Bearer ', 'malformed'],
    ['expired', `Bearer ${tokenFor({ tenantId }, -10)}`, 'expired'],
    ['wrong secret', `Bearer ${signToken({ tenantId, userId: 'u', permissions: [] }, { secret: 'another-secret-that-is-also-32-characters' })}`, 'bad_signature'],
    ['alg none', `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ tenantId, userId: 'u', permissions: [], exp: now + 60 })}.`, 'bad_signature'],
    ['tampered payload', `Bearer ${tokenFor({ tenantId }).replace(/\.[^.]+\./, `.${b64({ tenantId: 'other', userId: 'u', permissions: ['admin'], exp: now + 60 })}.`)}`, 'bad_signature'],
    ['tenantId with a slash', `Bearer ${tokenFor({ tenantId: 'a/b' })}`, 'malformed', 'tenantId'],
    ['tenantId too long', `Bearer ${tokenFor({ tenantId: 'a'.repeat(129) })}`, 'malformed', 'tenantId'],
    ['tenantId missing', `Bearer ${signToken({ userId: 'u', permissions: [] } as never, { secret: TEST_SECRET })}`, 'missing_claim', 'tenantId'],
    ['permissions not an array', `Bearer ${tokenFor({ tenantId, permissions: 'admin' as unknown as string[] })}`, 'malformed', 'permissions'],
    ['no userId nor sub', `Bearer ${signToken({ tenantId, permissions: [] } as never, { secret: TEST_SECRET })}`, 'missing_claim', 'userId']
  ]
  for (const [name, authorization, reason, claim] of invalid) {
    t.test(`${name} is 401 INVALID_TOKEN, reason ${reason}`, async (t) => {
      const res = await get({ authorization })
      t.equal(res.statusCode, 401)
      const body = res.json()
      t.same(Object.keys(body).sort(), ['code', 'error', 'reason', ...(claim !== undefined ? ['claim'] : [])].sort())
      t.match(body, { code: 'INVALID_TOKEN', reason, ...(claim !== undefined ? { claim } : {}) })
      t.equal(res.headers['www-authenticate'], `Bearer realm="tenant-enclave", error="invalid_token", error_description="${String(body.error).replace(/"/g, "'")}"`)
    })
  }

  t.test('a valid token yields the tenant context; an unknown tenant is free', async (t) => {
    const res = await get(bearer(tokenFor({ tenantId, userId: 'alice', permissions: ['tool:data:query'] })))
    t.equal(res.statusCode, 200)
    t.same(res.json(), { tenantId, userId: 'alice', permissions: ['tool:data:query'], tier: 'free', quotas: TIER_QUOTAS.free, perUser: {} })
  })

  t.test('sub stands in for userId', async (t) => {
    const token = signToken({ tenantId, sub: 'bob', permissions: [] } as never, { secret: TEST_SECRET })
    const res = await get(bearer(token))
    t.equal(res.json().userId, 'bob')
  })

  t.test('quotas follow the tier exactly, with overrides applied', async (t) => {
    for (const tier of ['starter', 'enterprise'] as const) {
      const id = uniqueTenantId(tier)
      const put = await app.inject({ method: 'PUT', url: `/admin/tenants/${id}`, headers: adminHeaders(), payload: { tier } })
      t.equal(put.statusCode, 200)
      const res = await get(bearer(tokenFor({ tenantId: id })))
      t.same(res.json().quotas, TIER_QUOTAS[tier], `${tier} quotas`)
      t.equal(res.json().tier, tier)
    }
    const id = uniqueTenantId('override')
    await app.inject({ method: 'PUT', url: `/admin/tenants/${id}`, headers: adminHeaders(), payload: { tier: 'starter', quotaOverrides: { maxExecutionsPerDay: 7, maxMemoryMB: 48 } } })
    const res = await get(bearer(tokenFor({ tenantId: id })))
    t.same(res.json().quotas, { ...TIER_QUOTAS.starter, maxExecutionsPerDay: 7, maxMemoryMB: 48 })
  })

  t.test('a tier change is seen at once (cache dropped on change)', async (t) => {
    const id = uniqueTenantId('retier')
    const token = bearer(tokenFor({ tenantId: id }))
    t.equal((await get(token)).json().tier, 'free')
    await app.inject({ method: 'PUT', url: `/admin/tenants/${id}`, headers: adminHeaders(), payload: { tier: 'enterprise' } })
    t.equal((await get(token)).json().tier, 'enterprise')
  })

  t.test('admin routes need the admin permission', async (t) => {
    const res = await app.inject({ method: 'GET', url: `/admin/tenants/${tenantId}`, headers: bearer(tokenFor({ tenantId, permissions: ['tool:data:query'] })) })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'FORBIDDEN')
    const noToken = await app.inject({ method: 'GET', url: `/admin/tenants/${tenantId}` })
    t.equal(noToken.statusCode, 401)
  })
})

for (const [algorithm, keyType] of [['RS256', 'rsa'], ['ES256', 'ec']] as const) {
  t.test(`${algorithm} tokens verified with JWT_PUBLIC_KEY`, async (t) => {
    const { privateKey, publicKey } = keyType === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const app = await buildApp(t, { JWT_SECRET: undefined, JWT_PUBLIC_KEY: pem }, contextRoute)
    const tenantId = uniqueTenantId(algorithm.toLowerCase())
    const good = signToken({ tenantId, userId: 'u', permissions: [] }, { privateKey: privatePem, algorithm })
    const ok = await app.inject({ method: 'GET', url: '/test/context', headers: bearer(good) })
    t.equal(ok.statusCode, 200)
    t.equal(ok.json().tenantId, tenantId)

    // An HS256 token "signed" with the public key (algorithm confusion) must not pass.
    const confused = signToken({ tenantId, userId: 'u', permissions: ['admin'] }, { secret: pem })
    const res = await app.inject({ method: 'GET', url: '/test/context', headers: bearer(confused) })
    t.equal(res.statusCode, 401)
    t.match(res.json(), { code: 'INVALID_TOKEN', reason: 'bad_signature', error: `The token is not signed with ${algorithm}, the only algorithm this service accepts: use a token signed by the issuer this service trusts` })
  })
}

t.test('the log line of a refused token carries its reason', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = await buildApp(t, { LOG_LEVEL: 'info' }, contextRoute, { write: (line) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  await app.inject({ method: 'GET', url: '/test/context', headers: bearer(tokenFor({ tenantId: uniqueTenantId('log') }, -10)) })
  await app.inject({ method: 'GET', url: '/test/context', headers: bearer(signToken({ userId: 'u', permissions: [] } as never, { secret: TEST_SECRET })) })
  await app.inject({ method: 'GET', url: '/test/context' })
  const failures = lines.filter((line) => line.authFailure !== undefined).map((line) => [line.authFailure, line.claim, line.msg])
  t.same(failures, [
    ['expired', undefined, 'authentication failed: expired'],
    ['missing_claim', 'tenantId', 'authentication failed: missing_claim'],
    ['missing_token', undefined, 'authentication failed: missing_token']
  ])
})
