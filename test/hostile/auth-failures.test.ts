import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { bearer, buildApp, tokenFor, uniqueTenantId } from '../helper.ts'
import { freePort } from '../support/free-port.ts'
import { waitFor } from '../support/wait-for.ts'

// #28: requests with invalid tokens were never rate-limited (700 in 3.9 s, all 401). Failed
// authentications are now counted per client address in the LimitStore; only failures count.

const LIMIT = 20

/** The window is the clock's minute: start a test well inside one, so it does not straddle two. */
async function awayFromMinuteEnd (): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000)
  if (left < 15_000) await sleep(left + 50)
}

t.test('failed authentications are limited per client address', async (t) => {
  const app = await buildApp(t, { AUTH_FAILURES_PER_MINUTE: String(LIMIT) })
  const good = bearer(tokenFor({ tenantId: uniqueTenantId('authfail') }))
  const get = async (remoteAddress: string, headers: Record<string, string>) =>
    await app.inject({ method: 'GET', url: '/api/usage', remoteAddress, headers })

  t.test(`a flood of bad tokens: exactly ${LIMIT} are answered 401, the rest 429 with Retry-After`, async (t) => {
    await awayFromMinuteEnd()
    const answers = await Promise.all(Array.from({ length: 200 }, async (_, i) => await get('192.0.2.1', { authorization: `Bearer forged.${i}.token` })))
    const statuses = answers.map((res) => res.statusCode)
    t.equal(statuses.filter((s) => s === 401).length, LIMIT, `${LIMIT} failures are told why`)
    t.equal(statuses.filter((s) => s === 429).length, 200 - LIMIT, 'the rest are refused')
    const refused = answers.find((res) => res.statusCode === 429)!
    const retryAfter = Number(refused.headers['retry-after'])
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} is the rest of the minute`)
    t.same(refused.json(), {
      error: 'Rate limit exceeded',
      code: 'RATE_LIMITED',
      message: `Rate limit exceeded: at most ${LIMIT} failed authentications per minute from one address; retry in ${retryAfter} seconds`,
      limit: LIMIT
    })

    // Once over, the address is refused before its token is even verified: a good token too.
    t.equal((await get('192.0.2.1', good)).statusCode, 429, 'a valid token from the same address waits out the window')
    t.equal((await get('192.0.2.1', {})).statusCode, 429, 'so does a request with no token')
    // Other addresses are not affected.
    t.equal((await get('192.0.2.2', good)).statusCode, 200, 'another address with a valid token')
    t.equal((await get('192.0.2.2', { authorization: 'Bearer x' })).statusCode, 401, 'another address\'s failures are its own')
  })

  t.test('successful requests are not counted', async (t) => {
    await awayFromMinuteEnd()
    for (let i = 0; i < LIMIT * 3; i++) t.equal((await get('192.0.2.3', good)).statusCode, 200)
    const bad = await get('192.0.2.3', { authorization: 'Bearer x' })
    t.equal(bad.statusCode, 401, 'a first failure after many successes is still a plain 401')
    t.equal(bad.json().reason, 'malformed')
  })

  t.test('a missing token counts as a failure too', async (t) => {
    await awayFromMinuteEnd()
    const statuses = []
    for (let i = 0; i <= LIMIT; i++) statuses.push((await get('192.0.2.4', {})).statusCode)
    t.same(statuses, [...Array(LIMIT).fill(401), 429])
  })
})

// Two instances on one Redis share the count: together they answer exactly LIMIT failures with 401.
const REDIS_SERVER = '/usr/bin/redis-server'
t.test('the count is shared by every instance (Redis)', { skip: process.env.REDIS_URL === undefined && !existsSync(REDIS_SERVER) ? 'needs REDIS_URL or redis-server' : false }, async (t) => {
  let redisUrl = process.env.REDIS_URL
  if (redisUrl === undefined) {
    const port = await freePort()
    const server = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    t.teardown(() => { server.kill() })
    redisUrl = `redis://127.0.0.1:${port}`
    const { createConnection } = await import('node:net')
    await waitFor(async () => await new Promise<boolean>((resolve) => {
      const socket = createConnection(port, '127.0.0.1', () => { socket.end(); resolve(true) }).on('error', () => { resolve(false) })
    }), { timeout: 10_000, interval: 50, message: 'redis-server listens' })
  }
  const env = { REDIS_URL: redisUrl, AUTH_FAILURES_PER_MINUTE: String(LIMIT) }
  const [a, b] = [await buildApp(t, env), await buildApp(t, env)]
  await awayFromMinuteEnd()
  // An address no other run of this test used in this minute, as the Redis may be shared.
  const address = `198.51.100.${Math.floor(Math.random() * 250) + 1}`
  const answers = await Promise.all(Array.from({ length: 60 }, async (_, i) =>
    await (i % 2 === 0 ? a : b).inject({ method: 'GET', url: '/api/usage', remoteAddress: address, headers: { authorization: `Bearer forged.${i}.token` } })))
  const statuses = answers.map((res) => res.statusCode)
  t.equal(statuses.filter((s) => s === 401).length, LIMIT, `${LIMIT} 401s across both instances`)
  t.equal(statuses.filter((s) => s === 429).length, 60 - LIMIT)
})
