import t, { type Test } from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { loadConfig } from '../../plugins/config.ts'
import { loadIdentityKey } from '../../services/sessions/identity-key.ts'
import { openRedis } from '../../services/store/redis-connection.ts'
import { createMemorySessionStore, createRedisSessionStore, type SessionStore } from '../../services/sessions/session-store.ts'
import { buildApp } from '../helper.ts'
import { IDENTITY_PEM, KAT } from './fixtures.ts'

const SECRET = 'x'.repeat(32)

t.test('SESSION_IDENTITY_KEY: a P-256 private key, or the start fails naming it', async (t) => {
  t.equal(loadConfig({ JWT_SECRET: SECRET, SESSION_IDENTITY_KEY: IDENTITY_PEM }).SESSION_IDENTITY_KEY, IDENTITY_PEM)
  const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string
  t.equal(loadIdentityKey(sec1).generated, false, 'SEC1 PEM works too')
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, SESSION_IDENTITY_KEY: p384 }), /SESSION_IDENTITY_KEY must be an EC P-256/)
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, SESSION_IDENTITY_KEY: rsa }), /SESSION_IDENTITY_KEY must be an EC P-256/)
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, SESSION_IDENTITY_KEY: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' }), /SESSION_IDENTITY_KEY is not a readable PEM/)
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, SESSION_IDENTITY_KEY: 'hello' }), /SESSION_IDENTITY_KEY/)
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, SESSION_TTL_SECONDS: '0' }), /SESSION_TTL_SECONDS/)
  t.equal(loadConfig({ JWT_SECRET: SECRET }).SESSION_TTL_SECONDS, 3600)
})

t.test('a configured key is the one served; an unset one is generated per process', async (t) => {
  const fixed = await buildApp(t, { SESSION_IDENTITY_KEY: IDENTITY_PEM })
  t.equal(fixed.sessionIdentity.thumbprint, KAT.thumbprint)
  t.equal((await fixed.inject('/.well-known/enclave-session.json')).json().thumbprint, KAT.thumbprint)
  const generated = loadIdentityKey()
  t.equal(generated.generated, true)
  t.not(generated.thumbprint, loadIdentityKey().thumbprint)
  t.not(generated.storeKey.toString('hex'), loadIdentityKey(IDENTITY_PEM).storeKey.toString('hex'))
})

async function storeContract (t: Test, store: SessionStore): Promise<void> {
  const id = `store-${Math.random().toString(36).slice(2)}`
  const session = { tenantId: 'tn', userId: 'u', expiresAt: Date.now() + 60_000, sealedKeys: 'sealed' }
  t.equal(await store.get(id), null)
  t.same(await store.acceptFrame(id, 0, 1), { status: 'gone' })
  t.equal(await store.reserveS2c(id, 1), null)
  await store.create(id, session)
  t.same(await store.get(id), session)
  // Twenty racers with the same counter: exactly one wins (Lua in Redis, one tick in memory).
  const raced = await Promise.all(Array.from({ length: 20 }, async () => await store.acceptFrame(id, 0, 1)))
  t.equal(raced.filter((r) => r.status === 'accepted').length, 1)
  t.equal(raced.filter((r) => r.status === 'replayed').length, 19)
  t.same(await store.acceptFrame(id, 9_007_199_254_740_990, 3), { status: 'accepted', s2cCounter: 1 }, 'counters up to 2^53 - 1')
  t.same(await store.acceptFrame(id, 9_007_199_254_740_990, 1), { status: 'replayed' })
  t.equal(await store.reserveS2c(id, 2), 4)
  t.same(await store.acceptFrame(id, 9_007_199_254_740_991, 1), { status: 'accepted', s2cCounter: 6 })
}

t.test('memory session store', async (t) => {
  let now = 1_000
  const store = createMemorySessionStore(() => now)
  t.teardown(async () => { await store.close() })
  await storeContract(t, createMemorySessionStore())
  await store.create('short', { tenantId: 'tn', userId: 'u', expiresAt: 2_000, sealedKeys: 'k' })
  t.same(await store.acceptFrame('short', 0, 1), { status: 'accepted', s2cCounter: 0 })
  now = 2_000
  t.equal(await store.get('short'), null, 'gone at its expiry')
  t.same(await store.acceptFrame('short', 1, 1), { status: 'gone' })
})

const { REDIS_URL } = process.env
// Runs in CI's real pass, where REDIS_URL is set.
if (REDIS_URL !== undefined) {
  t.test('Redis session store', async (t) => {
    const client = openRedis(REDIS_URL, { maxRetriesPerRequest: 1 })
    t.teardown(async () => { await client.quit() })
    const store = createRedisSessionStore(client)
    await storeContract(t, store)
    const id = `ttl-${Math.random().toString(36).slice(2)}`
    await store.create(id, { tenantId: 'tn', userId: 'u', expiresAt: Date.now() + 5_000, sealedKeys: 'k' })
    const pttl = await client.pttl(`tenant-enclave:session:${id}`)
    t.ok(pttl > 0 && pttl <= 5_000, 'the key expires with the session')
  })
}

t.test('the identity key is published in the service\'s JWKS when that plugin is loaded first', async (t) => {
  const Fastify = (await import('fastify')).default
  const configPlugin = (await import('../../plugins/config.ts')).default
  const sessionIdentityPlugin = (await import('../../plugins/session-identity.ts')).default
  const published: unknown[] = []
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(configPlugin, { config: loadConfig({ JWT_SECRET: SECRET, SESSION_IDENTITY_KEY: IDENTITY_PEM }) })
  // Only addPublicJwk matters here; the real plugin's other members (jwks, toolSigner) are not used.
  app.decorate('serviceKeys', { addPublicJwk: (jwk: unknown) => { published.push(jwk) } } as never)
  await app.register(sessionIdentityPlugin)
  await app.ready()
  t.same(published, [{ ...KAT.identityJwk, use: 'sig', alg: 'ES256', kid: KAT.thumbprint }])
})
