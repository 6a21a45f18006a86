import t from 'tap'
import { TtlCache } from '../services/ttl-cache.ts'

// Fake time (issue 9 item 7): the cache runs on the clock it is given, so no test sleeps.
t.test('entries live ttlMs on the given clock, then load again', async (t) => {
  let now = 1_000
  let loads = 0
  const cache = new TtlCache<number>(500, { now: () => now })
  const load = async (): Promise<number> => ++loads
  t.equal(await cache.get('a', load), 1)
  now += 499
  t.equal(await cache.get('a', load), 1, 'still fresh 1 ms before expiry')
  now += 1
  t.equal(await cache.get('a', load), 2, 'expired at ttlMs: loaded again')
  cache.delete('a')
  t.equal(await cache.get('a', load), 3, 'delete drops the entry at once')
})

t.test('concurrent misses share one load; a failed load is not cached', async (t) => {
  const cache = new TtlCache<string>(1000, { now: () => 0 })
  let loads = 0
  const [x, y] = await Promise.all([cache.get('k', async () => `v${++loads}`), cache.get('k', async () => `v${++loads}`)])
  t.same([x, y, loads], ['v1', 'v1', 1])
  await t.rejects(cache.get('bad', async () => { throw new Error('down') }), /down/)
  t.equal(await cache.get('bad', async () => 'ok'), 'ok', 'the next caller tries again')
})

t.test('maxEntries drops the oldest entry', async (t) => {
  const cache = new TtlCache<number>(1000, { now: () => 0, maxEntries: 2 })
  let loads = 0
  const load = async (): Promise<number> => ++loads
  await cache.get('a', load)
  await cache.get('b', load)
  await cache.get('c', load)
  t.equal(await cache.get('b', load), 2, 'b is kept')
  t.equal(await cache.get('a', load), 4, 'a was dropped and loads again')
})
