import t from 'tap'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import type { TestContext } from '../store/fixtures/limit-store-contract.ts'
import { createMemoryStore, createRedisStore, type LimitStore } from '../../services/store/index.ts'
import { reservingRateStore } from '../../services/quotas/request-rate-reservation.ts'

// The request rate window reserved in blocks: one instance counts exactly (what the
// x-ratelimit-remaining header says), the shared counter never passes the limit across instances,
// and a window known full refuses without asking the store.

type Hit = { current: number, ttl: number }

function rateStore (store: LimitStore, now?: () => number): FastifyRateLimitStore {
  const Store = reservingRateStore(store, 'test:rate:', now === undefined ? {} : { now })
  return new Store({})
}

async function hit (store: FastifyRateLimitStore, key: string, timeWindow: number, max: number): Promise<Hit> {
  return await new Promise((resolve, reject) => {
    store.incr(key, (err, result) => { err !== null ? reject(err) : resolve(result as Hit) }, timeWindow, max)
  })
}

/** The LimitStore with its consumeUpTo calls counted: how many round trips the window cost. */
function counting (store: LimitStore): { store: LimitStore, calls: () => number } {
  let calls = 0
  const counted: LimitStore = Object.create(store) as LimitStore
  counted.consumeUpTo = async (...args) => { calls++; return await store.consumeUpTo(...args) }
  return { store: counted, calls: () => calls }
}

async function contract (t: TestContext, open: () => LimitStore, openTwo: () => [LimitStore, LimitStore]): Promise<void> {
  let n = 0
  const key = (): string => `tenant:rl-${process.pid}-${Date.now()}-${n++}`
  /** A store handle for one test, closed at its end. */
  const openFor = (t: TestContext): LimitStore => {
    const store = open()
    t.teardown(async () => { await store.close() })
    return store
  }

  await t.test('one instance counts exactly, and the request after the limit is refused', async (t) => {
    const store = openFor(t)
    const rate = rateStore(store)
    const k = key()
    for (let i = 1; i <= 40; i++) {
      const { current, ttl } = await hit(rate, k, 60_000, 40)
      t.equal(current, i, `request ${i} counts as ${i}`)
      t.ok(ttl > 0 && ttl <= 60_000, 'the window has time left')
    }
    const refused = await hit(rate, k, 60_000, 40)
    t.ok(refused.current > 40, 'the 41st is over the limit')
    t.ok(refused.ttl > 0 && refused.ttl <= 60_000)
    t.equal(await store.get(`test:rate:${k}`), 40, 'the shared counter holds exactly the limit')
  })

  await t.test('a steady client pays a round trip per block, not per request', async (t) => {
    const backend = openFor(t)
    const { store, calls } = counting(backend)
    const rate = rateStore(store)
    const k = key()
    for (let i = 0; i < 200; i++) t.equal((await hit(rate, k, 60_000, 100_000)).current, i + 1)
    // Blocks 1, 2, 4, ..., 64, 64, 64: 200 requests in 9 reservations.
    t.equal(calls(), 9)
    t.equal(await backend.get(`test:rate:${k}`), 1 + 2 + 4 + 8 + 16 + 32 + 64 + 64 + 64, 'reserved: the blocks, no more')
  })

  await t.test('a small limit is counted one request at a time', async (t) => {
    const backend = openFor(t)
    const { store, calls } = counting(backend)
    const rate = rateStore(store)
    const k = key()
    for (let i = 1; i <= 3; i++) t.equal((await hit(rate, k, 60_000, 3)).current, i)
    t.equal(calls(), 3, 'a limit under 16 reserves blocks of one')
    t.ok((await hit(rate, k, 60_000, 3)).current > 3)
  })

  await t.test('a full window refuses without asking the store again', async (t) => {
    const backend = openFor(t)
    const { store, calls } = counting(backend)
    const rate = rateStore(store)
    const k = key()
    await hit(rate, k, 60_000, 1)
    t.ok((await hit(rate, k, 60_000, 1)).current > 1)
    const asked = calls()
    for (let i = 0; i < 50; i++) t.ok((await hit(rate, k, 60_000, 1)).current > 1)
    t.equal(calls(), asked, '50 refusals, no round trip')
  })

  await t.test('two instances, 60 concurrent requests each, limit 50: exactly 50 admitted', async (t) => {
    const [a, b] = openTwo()
    t.teardown(async () => { await Promise.all([...new Set([a, b])].map(async (s) => { await s.close() })) })
    const k = key()
    const onA = rateStore(a)
    const onB = rateStore(b)
    const results = await Promise.all(Array.from({ length: 120 }, async (_, i) => await hit(i % 2 === 0 ? onA : onB, k, 60_000, 50)))
    // Every reserved unit is used by the requests still waiting, so none is left idle here.
    t.equal(results.filter((r) => r.current <= 50).length, 50, 'admitted: the limit, not one more')
    t.equal(await a.get(`test:rate:${k}`), 50, 'the shared counter never passed the limit')
  })

  await t.test('the store down: the hit fails (the plugin lets the request through: skipOnError)', async (t) => {
    const store = open()
    const rate = rateStore(store)
    await store.close()
    await t.rejects(hit(rate, key(), 60_000, 10), { code: 'STORE_UNAVAILABLE' })
  })
}

t.test('memory store', async (t) => {
  await contract(t, () => createMemoryStore(), () => { const store = createMemoryStore(); return [store, store] })

  t.test('a new window starts once the last one ended, with nothing carried over', async (t) => {
    let now = 1_000_000
    const clock = (): number => now
    const backend = createMemoryStore({ now: clock })
    const rate = rateStore(backend, clock)
    for (let i = 1; i <= 30; i++) t.equal((await hit(rate, 'tenant:w', 1000, 1000)).current, i)
    t.ok((await backend.get('test:rate:tenant:w')) > 30, 'units reserved ahead in the first window')
    now += 1000
    const first = await hit(rate, 'tenant:w', 1000, 1000)
    t.equal(first.current, 1, 'the next window counts from one: the unused units ended with theirs')
    t.equal(first.ttl, 1000)
    t.equal(await backend.get('test:rate:tenant:w'), 1, 'and the shared counter too')
  })
})

const redisUrl = process.env.REDIS_URL
if (redisUrl !== undefined && redisUrl !== '') {
  t.test('redis store', async (t) => {
    await contract(t, () => createRedisStore(redisUrl).store, () => [createRedisStore(redisUrl).store, createRedisStore(redisUrl).store])
  })
}
