import t from 'tap'
import { createMemoryStore, createRedisStore } from '../../services/store/index.ts'
import { fakeClock, limitStoreContract } from './fixtures/limit-store-contract.ts'

// One contract, every implementation. The memory store always runs; the Redis run is registered
// only when REDIS_URL is set (CI), so without Redis it is absent rather than a vacuous pass.
t.test('memory store', async (t) => {
  t.equal(createMemoryStore().kind, 'memory')
  // Fake time: TTLs and leases expire when the test says so, not after real sleeps.
  const clock = fakeClock()
  await limitStoreContract(t, async () => {
    const store = createMemoryStore({ now: clock.now })
    return [store, store]
  }, clock)
})

const redisUrl = process.env.REDIS_URL
if (redisUrl !== undefined && redisUrl !== '') {
  t.test('redis store', async (t) => {
    const probe = createRedisStore(redisUrl).store
    t.equal(probe.kind, 'redis')
    await probe.close()
    await limitStoreContract(t, async () => [createRedisStore(redisUrl).store, createRedisStore(redisUrl).store])
  })
}
