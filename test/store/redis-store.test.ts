import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { createRedisStore, StoreUnavailableError, type LimitStore } from '../../services/store/index.ts'
import { isClusterUrl, openRedis, type RedisClient } from '../../services/store/redis-connection.ts'
import { type TestContext } from './fixtures/limit-store-contract.ts'
import { waitFor } from '../support/wait-for.ts'

// Redis-specific behaviour. The unreachable-server test needs no Redis at all, so it always runs;
// the reconnection tests need a real server and are registered only when REDIS_URL is set.

t.test('an unreachable Redis fails fast with StoreUnavailableError', async (t) => {
  const { store, client } = createRedisStore('redis://127.0.0.1:1')
  t.teardown(async () => { await store.close() })
  t.equal(store.kind, 'redis')
  t.type(client, Redis, 'the raw client is exposed for @fastify/rate-limit')

  const started = Date.now()
  const err = await store.ping().then(() => undefined, (e: unknown) => e)
  t.type(err, StoreUnavailableError)
  t.equal((err as StoreUnavailableError).code, 'STORE_UNAVAILABLE')
  t.equal((err as StoreUnavailableError).statusCode, 503)
  t.ok((err as Error).cause instanceof Error, 'the ioredis error is kept as cause')
  t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`)

  // Every kind of call, including the first subscribe (which opens the second connection).
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['consume', async () => await store.consume('k', 1, 1, 1000)],
    ['get', async () => await store.get('k')],
    ['refund', async () => await store.refund('k', 1)],
    ['acquireLease', async () => await store.acquireLease('k', 'h', 1, 1000)],
    ['releaseLease', async () => await store.releaseLease('k', 'h')],
    ['countLeases', async () => await store.countLeases('k')],
    ['publish', async () => await store.publish('c', 'm')],
    ['subscribe', async () => await store.subscribe('c', () => {})]
  ]
  for (const [name, call] of calls) {
    const begun = Date.now()
    await t.rejects(call(), StoreUnavailableError, name)
    t.ok(Date.now() - begun < 3000, `${name} answered in ${Date.now() - begun} ms`)
  }
})

t.test('a connect timeout bounds the wait for a server that never answers', async (t) => {
  // A listening socket that accepts but never speaks: ioredis connects, then the ready check hangs.
  const { createServer } = await import('node:net')
  const silent = createServer((socket) => { socket.resume() }) // reads, never replies
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.close() })
  const port = (silent.address() as { port: number }).port
  const { store } = createRedisStore(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 500 })
  t.teardown(async () => { await store.close() })
  const started = Date.now()
  await t.rejects(store.ping(), StoreUnavailableError)
  t.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`)
})

const redisUrl = process.env.REDIS_URL
if (redisUrl !== undefined && redisUrl !== '') {
  const run = randomUUID()

  function open (t: TestContext, opts: Parameters<typeof createRedisStore>[1] = {}): { store: LimitStore, client: RedisClient } {
    const opened = createRedisStore(redisUrl as string, opts)
    t.teardown(async () => { await opened.store.close() })
    return opened
  }

  t.test('keyPrefix namespaces keys and channels', async (t) => {
    const prefix = `test:store:${run}:ns:`
    const { store } = open(t, { keyPrefix: prefix })
    const raw = openRedis(redisUrl)
    t.teardown(() => { raw.disconnect() })
    await store.consume('counter', 2, 5, 60_000)
    t.equal(await raw.get(`${prefix}counter`), '2', 'the counter lives under the prefix')
    await store.acquireLease('sem', 'h', 1, 60_000)
    t.equal(await raw.zcard(`${prefix}sem`), 1, 'so does the lease set')
    const pttl = await raw.pttl(`${prefix}sem`)
    t.ok(pttl > 0 && pttl <= 60_000, 'which expires with its last lease')
    const got: string[] = []
    await store.subscribe('events', (m) => { got.push(m) })
    await raw.publish(`${prefix}events`, 'via raw')
    t.ok(await waitFor(() => got.length === 1, { timeout: 3000, message: 'delivery on the prefixed channel' }), 'channels carry the prefix too')
  })

  t.test('an unrelated Redis error is not reported as unavailability', async (t) => {
    const { store, client } = open(t)
    const k = `test:store:${run}:wrongtype`
    await store.ping() // connected: the raw client has no offline queue either
    await client.set(k, 'a string', 'PX', 60_000)
    const err = await store.acquireLease(k, 'h', 1, 1000).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof Error && !(err instanceof StoreUnavailableError), 'a WRONGTYPE bug stays a bug')
    t.match((err as Error).message, /WRONGTYPE/)
  })

  t.test('a key prefix with a brace is refused: it would replace every key\'s hash tag', async (t) => {
    t.throws(() => createRedisStore(redisUrl, { keyPrefix: 'app{1}:' }), /must not contain/)
  })
}

// Killing one connection by its CLIENT ID: one server's (CI's standalone pass). A cluster
// client holds a connection per node, whose drops the failover drill's territory.
if (redisUrl !== undefined && redisUrl !== '' && !isClusterUrl(redisUrl)) {
  const run = randomUUID()

  function open (t: TestContext, opts: Parameters<typeof createRedisStore>[1] = {}): { store: LimitStore, client: Redis } {
    const opened = createRedisStore(redisUrl as string, opts)
    t.teardown(async () => { await opened.store.close() })
    return { store: opened.store, client: opened.client as Redis }
  }

  async function killClients (admin: Redis, filter: string[]): Promise<void> {
    await admin.call('CLIENT', 'KILL', ...filter)
  }

  t.test('commands recover without restart after the connection drops', async (t) => {
    const { store, client } = open(t)
    const admin = new Redis(redisUrl)
    t.teardown(() => { admin.disconnect() })
    await store.ping()
    // Kill only our own connection: CI's Redis is shared with other test files.
    const id = await client.client('ID')
    await killClients(admin, ['ID', String(id)])
    const failures: unknown[] = []
    const recovered = await waitFor(async () => {
      try {
        await store.ping()
        return true
      } catch (err) {
        failures.push(err)
        return false
      }
    }, { timeout: 5000, interval: 50, message: 'ping succeeds again' })
    t.ok(recovered, `ping succeeds again (after ${failures.length} failed attempts)`)
    t.ok(failures.every((e) => e instanceof StoreUnavailableError), 'failures meanwhile were StoreUnavailableError')
    t.not(await client.client('ID'), id, 'on a new connection')
    t.equal((await store.consume(`test:store:${run}:after-reconnect`, 1, 1, 60_000)).allowed, true)
  })

  t.test('subscriptions survive a reconnect of the subscriber connection', async (t) => {
    const name = `test-store-${run}`
    const { store } = open(t, { connectionName: name })
    const admin = new Redis(redisUrl)
    t.teardown(() => { admin.disconnect() })
    const channel = `test:store:${run}:resubscribe`
    const got: string[] = []
    await store.ping()
    const clients = async (): Promise<string[]> => (await admin.call('CLIENT', 'LIST') as string).split('\n')
    t.notOk((await clients()).some((line) => line.includes(` name=${name}:sub `)), 'no subscriber connection before the first subscribe')
    await store.subscribe(channel, (m) => { got.push(m) })
    await store.publish(channel, 'before')
    t.ok(await waitFor(() => got.length === 1, { timeout: 3000, message: 'delivery before the drop' }), 'delivered before the drop')

    const subLine = (await clients()).find((line) => line.includes(` name=${name}:sub `))
    t.ok(subLine, 'the subscriber connection is named')
    const subId = /\bid=(\d+)/.exec(subLine ?? '')?.[1] ?? ''
    await killClients(admin, ['ID', subId])

    // Publish until the resubscribed connection hears it (delivery is at-most-once while down).
    const heard = await waitFor(() => {
      if (got.includes('after')) return true
      store.publish(channel, 'after').catch(() => {})
      return false
    }, { timeout: 5000, interval: 10, message: 'delivery after the resubscribe' })
    t.ok(heard, 'delivered again after ioredis resubscribed')
    t.ok((await clients()).some((line) => line.includes(` name=${name}:sub `) && !line.includes(`id=${subId} `)), 'on a new subscriber connection')
  })

  t.test('onResubscribed: told once the subscription holds again after a reconnect, not at the first subscribe', async (t) => {
    const name = `test-store-${run}-again`
    const { store } = open(t, { connectionName: name })
    const admin = new Redis(redisUrl)
    t.teardown(() => { admin.disconnect() })
    const channel = `test:store:${run}:again`
    const got: string[] = []
    let resubscribed = 0
    await store.subscribe(channel, (m) => { got.push(m) }, () => { resubscribed++ })
    t.equal(resubscribed, 0, 'not at the first subscribe')
    const subLine = (await admin.call('CLIENT', 'LIST') as string).split('\n').find((line) => line.includes(` name=${name}:sub `))
    await killClients(admin, ['ID', /\bid=(\d+)/.exec(subLine ?? '')?.[1] ?? ''])
    await waitFor(() => resubscribed === 1, { timeout: 5000, message: 'told after the reconnect' })
    // The subscription is confirmed by then: a message published now arrives, first time.
    await store.publish(channel, 'after')
    await waitFor(() => got.includes('after'), { timeout: 3000, message: 'delivered' })
    t.same(got, ['after'])
    t.equal(resubscribed, 1, 'once per reconnect')
  })
}
