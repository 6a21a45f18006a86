// POST /api/sessions and /api/sessions/:id/execute through app.inject, with frames built by hand
// (fixtures.ts) so a test can tamper with them. Refusals consume nothing: usage stays unchanged.
import t from 'tap'
import { createECDH } from 'node:crypto'
import { bearer, buildApp, createTenant, tokenFor } from '../helper.ts'
import { rawSession, sessionOnTwoInstances } from './fixtures.ts'

const flipBit = (base64url: string, byteIndex: number): string => {
  const bytes = Buffer.from(base64url, 'base64url')
  const at = byteIndex < 0 ? bytes.length + byteIndex : byteIndex
  bytes[at] = (bytes[at] as number) ^ 0x01
  return bytes.toString('base64url')
}

t.test('encrypted sessions', async (t) => {
  const app = await buildApp(t, { RATE_LIMIT_PER_MINUTE: '100000' })
  const usage = async (headers: Record<string, string>) => (await app.inject({ method: 'GET', url: '/api/usage', headers })).json()

  t.test('the well-known document names the identity key', async (t) => {
    const res = await app.inject('/.well-known/enclave-session.json')
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.thumbprint, app.sessionIdentity.thumbprint)
    t.equal(body.kid, app.sessionIdentity.kid)
    t.same(body.algorithms, { protocol: 'tenant-enclave/v1', keyAgreement: 'ECDH-P256', kdf: 'HKDF-SHA256', cipher: 'A256GCM', signature: 'ES256' })
    t.same(body.jwk, app.sessionIdentity.publicJwk)
    t.notOk('d' in body.jwk, 'no private part')
  })

  t.test('a round trip returns the script\'s result, encrypted', async (t) => {
    const tenant = await createTenant(app, 'sess-rt')
    const session = await rawSession(app, tenant.headers)
    const res = await session.execute(session.frame(0, { code: 'console.log("hi"); return 6 * 7' }))
    t.equal(res.statusCode, 200)
    const { frame } = res.json()
    t.same(Object.keys(res.json()), ['frame'])
    t.equal(frame.counter, 0, 'the server\'s first frame')
    const result = session.open(frame)
    t.equal(result.success, true)
    t.equal(result.value, 42)
    t.same(result.logs, [{ level: 'log', message: 'hi' }])
    const next = await session.execute(session.frame(5, { code: 'return 1', timeoutMs: 1000 }))
    t.equal(next.json().frame.counter, 1, 'server counters go up by one per frame')
    t.equal(session.open(next.json().frame).value, 1, 'client counters may skip, as long as they increase')
    t.equal((await usage(tenant.headers)).executions, 2)
  })

  t.test('tampered frames: 400 DECRYPTION_FAILED, nothing runs, the counter is not consumed', async (t) => {
    const tenant = await createTenant(app, 'sess-tamper')
    const session = await rawSession(app, tenant.headers)
    const good = session.frame(0, { code: 'return 1' })
    const refused = { error: 'The frame does not decrypt with this session\'s key', code: 'DECRYPTION_FAILED' }
    for (const [label, frame] of [
      ['a bit of the ciphertext', { counter: 0, ciphertext: flipBit(good.ciphertext, 0) }],
      ['a bit of the tag', { counter: 0, ciphertext: flipBit(good.ciphertext, -1) }],
      ['a bit of the counter', { counter: 1, ciphertext: good.ciphertext }],
      ['a higher counter', { counter: 2 ** 40, ciphertext: good.ciphertext }],
      ['the ciphertext cut short', { counter: 0, ciphertext: good.ciphertext.slice(0, 10) }]
    ] as const) {
      const res = await session.execute(frame)
      t.equal(res.statusCode, 400, label)
      t.same(res.json(), refused, label)
    }
    t.equal((await usage(tenant.headers)).executions, 0, 'nothing ran')
    const res = await session.execute(good)
    t.equal(res.statusCode, 200, 'the genuine frame still runs: forgeries consumed no counter')
    t.equal(session.open(res.json().frame).value, 1)
  })

  t.test('a replayed or lower counter: 409 REPLAYED_FRAME, nothing runs', async (t) => {
    const tenant = await createTenant(app, 'sess-replay')
    const session = await rawSession(app, tenant.headers)
    const first = session.frame(3, { code: 'return 1' })
    t.equal((await session.execute(first)).statusCode, 200)
    const refused = { error: 'The frame\'s counter is not above the last one this session accepted', code: 'REPLAYED_FRAME' }
    const again = await session.execute(first)
    t.equal(again.statusCode, 409)
    t.same(again.json(), refused)
    const lower = await session.execute(session.frame(2, { code: 'return 2' }))
    t.equal(lower.statusCode, 409)
    t.same(lower.json(), refused)
    t.equal((await usage(tenant.headers)).executions, 1)
  })

  t.test('the same frame sent twice at once runs once', async (t) => {
    const tenant = await createTenant(app, 'sess-race')
    const session = await rawSession(app, tenant.headers)
    const frame = session.frame(0, { code: 'return 1' })
    const codes = (await Promise.all([session.execute(frame), session.execute(frame), session.execute(frame)])).map((r) => r.statusCode).sort()
    t.same(codes, [200, 409, 409])
    t.equal((await usage(tenant.headers)).executions, 1)
  })

  t.test('concurrent frames of one session never share a server counter (no nonce reuse)', async (t) => {
    const tenant = await createTenant(app, 'sess-nonce', { tier: 'enterprise' })
    const session = await rawSession(app, tenant.headers)
    const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => await session.execute(session.frame(i, { code: `return ${i}` }))))
    // Frames may overtake one another on the way in: a lower counter after a higher one is a replay.
    t.ok(answers.every((a) => a.statusCode === 200 || a.statusCode === 409))
    const counters = answers.filter((a) => a.statusCode === 200).map((a) => a.json().frame.counter)
    t.ok(counters.length >= 1)
    t.equal(new Set(counters).size, counters.length, 'every answer has its own counter')
    for (const answer of answers.filter((a) => a.statusCode === 200)) t.equal(session.open(answer.json().frame).success, true)
  })

  t.test('another user or tenant: 403, nothing runs or is consumed', async (t) => {
    const tenant = await createTenant(app, 'sess-owner', { userId: 'alice' })
    const session = await rawSession(app, tenant.headers)
    const frame = session.frame(0, { code: 'return 1' })
    const refused = { error: 'Forbidden: this session belongs to another tenant or user', code: 'FORBIDDEN' }
    const otherUser = bearer(tokenFor({ tenantId: tenant.tenantId, userId: 'mallory' }))
    const otherTenant = bearer(tokenFor({ tenantId: `${tenant.tenantId}-x`, userId: 'alice' }))
    for (const headers of [otherUser, otherTenant]) {
      const res = await session.execute(frame, headers)
      t.equal(res.statusCode, 403)
      t.same(res.json(), refused)
    }
    t.equal((await usage(tenant.headers)).executions, 0)
    t.equal((await session.execute(frame)).statusCode, 200, 'the owner\'s frame was not consumed')
  })

  t.test('an unknown session: 404; no token: 401', async (t) => {
    const tenant = await createTenant(app, 'sess-unknown')
    const future = (Date.now() + 60_000).toString(36)
    const res = await app.inject({ method: 'POST', url: `/api/sessions/${future}.AAAAAAAAAAAAAAAAAAAAAA/execute`, headers: tenant.headers, payload: { frame: { counter: 0, ciphertext: 'AAAAAAAAAAAAAAAAAAAAAA' } } })
    t.equal(res.statusCode, 404)
    t.same(res.json(), { error: 'No such session', code: 'SESSION_NOT_FOUND' })
    const past = (Date.now() - 1).toString(36)
    const gone = await app.inject({ method: 'POST', url: `/api/sessions/${past}.AAAAAAAAAAAAAAAAAAAAAA/execute`, headers: tenant.headers, payload: { frame: { counter: 0, ciphertext: 'AAAA' } } })
    t.equal(gone.statusCode, 410, 'an id past its expiry is gone, whether or not it existed')
    const malformed = await app.inject({ method: 'POST', url: '/api/sessions/nope/execute', headers: tenant.headers, payload: { frame: { counter: 0, ciphertext: 'AAAA' } } })
    t.equal(malformed.statusCode, 400)
    t.equal((await app.inject({ method: 'POST', url: '/api/sessions', payload: { clientPublicKey: 'AA' } })).statusCode, 401)
  })

  t.test('a client key that is not a P-256 point: 400 INVALID_PUBLIC_KEY', async (t) => {
    const tenant = await createTenant(app, 'sess-badkey')
    const offCurve = Buffer.alloc(65, 7)
    offCurve[0] = 4
    const compressed = createECDH('prime256v1')
    compressed.generateKeys()
    for (const key of [offCurve.toString('base64url'), compressed.getPublicKey('base64url', 'compressed'), 'AAAA']) {
      const res = await app.inject({ method: 'POST', url: '/api/sessions', headers: tenant.headers, payload: { clientPublicKey: key } })
      t.equal(res.statusCode, 400)
      t.equal(res.json().code, 'INVALID_PUBLIC_KEY')
    }
    const notBase64 = await app.inject({ method: 'POST', url: '/api/sessions', headers: tenant.headers, payload: { clientPublicKey: 'a+b/' } })
    t.equal(notBase64.statusCode, 400)
    t.equal(notBase64.json().code, 'BAD_REQUEST')
  })

  t.test('refusals come back encrypted with the fields they have in the clear', async (t) => {
    const tenant = await createTenant(app, 'sess-refuse', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 1, maxCodeSizeKB: 1 } })
    const session = await rawSession(app, tenant.headers)
    const big = `return "${'x'.repeat(2000)}"`

    const clearTooLarge = await tenant.execute(big)
    const tooLarge = await session.execute(session.frame(0, { code: big }))
    t.equal(tooLarge.statusCode, 413)
    t.same(Object.keys(tooLarge.json()), ['frame'])
    t.same(session.open(tooLarge.json().frame), clearTooLarge.json())
    t.same(clearTooLarge.json(), { error: 'Code size limit exceeded (1 KB)', code: 'CODE_TOO_LARGE', limit: 1 })

    t.equal((await tenant.execute('return 1')).statusCode, 200, 'uses the one execution of the day')
    const clearQuota = await tenant.execute('return 1')
    const quota = await session.execute(session.frame(1, { code: 'return 1' }))
    t.equal(quota.statusCode, 429)
    t.equal(quota.headers['retry-after'], clearQuota.headers['retry-after'])
    t.same(session.open(quota.json().frame), clearQuota.json())
    t.equal(clearQuota.json().code, 'EXECUTION_QUOTA_EXCEEDED')

    const bad = await session.execute(session.frame(2, { script: 'return 1' }))
    t.equal(bad.statusCode, 400)
    t.same(session.open(bad.json().frame), { error: 'Bad Request', code: 'BAD_REQUEST', message: 'The frame\'s plaintext must be an /api/execute body: {code, timeoutMs?}' })
    // The same body schema as POST /api/execute and POST /api/executions: an empty script is a 400.
    const empty = await session.execute(session.frame(3, { code: '' }))
    t.equal(empty.statusCode, 400)
    t.same(session.open(empty.json().frame), { error: 'Bad Request', code: 'BAD_REQUEST', message: 'The frame\'s plaintext must be an /api/execute body: {code, timeoutMs?}' })
    t.equal((await usage(tenant.headers)).executions, 1)
  })
})

t.test('an expired session: 410, nothing runs', async (t) => {
  const app = await buildApp(t, { SESSION_TTL_SECONDS: '1' })
  const tenant = await createTenant(app, 'sess-expire')
  const session = await rawSession(app, tenant.headers)
  const frame = session.frame(0, { code: 'return 1' })
  const expiresAt = Number.parseInt(session.sessionId.split('.')[0] as string, 36)
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 20))
  const res = await session.execute(frame)
  t.equal(res.statusCode, 410)
  t.same(res.json(), { error: 'The session has expired; open a new one', code: 'SESSION_EXPIRED' })
  t.equal((await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().executions, 0)
})

const { REDIS_URL, DATABASE_URL } = process.env
if (REDIS_URL !== undefined && DATABASE_URL !== undefined) {
  t.test('two instances on one Redis: any instance serves a session, a frame runs once', async (t) => {
    const { a, b, tenant, session } = await sessionOnTwoInstances(t, 'sess-two')
    const onB = await b.inject({ method: 'POST', url: `/api/sessions/${session.sessionId}/execute`, headers: tenant.headers, payload: { frame: session.frame(0, { code: 'return 2' }) } })
    t.equal(onB.statusCode, 200, 'opened on A, served by B')
    t.equal(session.open(onB.json().frame).value, 2)
    for (let counter = 1; counter <= 5; counter++) {
      const frame = session.frame(counter, { code: 'return 1' })
      const [fromA, fromB] = await Promise.all([session.execute(frame), b.inject({ method: 'POST', url: `/api/sessions/${session.sessionId}/execute`, headers: tenant.headers, payload: { frame } })])
      t.same([fromA.statusCode, fromB.statusCode].sort(), [200, 409], `frame ${counter}: one instance ran it`)
    }
    t.equal((await a.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().executions, 6)
  })
}
