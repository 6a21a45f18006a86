import t from 'tap'
import type { TestContext } from '../store/fixtures/limit-store-contract.ts'
import { createMemoryStore, createRedisStore, utcDayWindow, type LimitStore } from '../../services/store/index.ts'
import { toolCallsKey } from '../../services/quotas/counter-keys.ts'
import { ToolQuotaReservation } from '../../services/quotas/tool-quota-reservation.ts'

// Blocks of the daily tool quota: whatever the block sizes, the shared counter never passes the
// limit, and once runs give back what they did not use it equals the calls really made.
// `openTwo` gives two instances' handles on one backend (for memory, one store twice).
async function contract (t: TestContext, open: () => LimitStore, openTwo: () => [LimitStore, LimitStore]): Promise<void> {
  let n = 0
  const tenant = (): string => `resv-${process.pid}-${Date.now()}-${n++}`
  /** A store handle for one test, closed at its end. */
  const openFor = (t: TestContext): LimitStore => {
    const store = open()
    t.teardown(async () => { await store.close() })
    return store
  }
  const counted = async (store: LimitStore, tenantId: string): Promise<number> => await store.get(toolCallsKey(tenantId, utcDayWindow().dayKey))

  await t.test('a run takes blocks and gives back the unused units', async (t) => {
    const store = openFor(t)
    const id = tenant()
    const run = new ToolQuotaReservation(store, id, 100, 50)
    t.equal(await run.take(), true)
    t.equal(await counted(store, id), 1, 'a run with one call reserves exactly one unit')
    for (let i = 0; i < 4; i++) t.equal(await run.take(), true)
    t.equal(await counted(store, id), 7, 'blocks 1, 2, 4 reserved for 5 calls')
    await run.giveBack()
    t.equal(await counted(store, id), 5, 'exactly the calls made once the run has ended')
    t.equal(await run.take(), true, 'a call after the end is still counted, one by one')
    t.equal(await counted(store, id), 6)
  })

  await t.test('the per-run maximum bounds a block', async (t) => {
    const store = openFor(t)
    const id = tenant()
    const run = new ToolQuotaReservation(store, id, 100, 2)
    t.equal(await run.take(), true)
    t.equal(await run.take(), true)
    t.equal(await counted(store, id), 2, 'never reserves more than the run may call')
    await run.giveBack()
  })

  await t.test('5 calls a day: the 6th is refused, in the same run or the next', async (t) => {
    const store = openFor(t)
    const id = tenant()
    const first = new ToolQuotaReservation(store, id, 5, 50)
    for (let i = 0; i < 5; i++) t.equal(await first.take(), true, `call ${i + 1}`)
    t.equal(await first.take(), false, 'call 6 refused')
    await first.giveBack()
    t.equal(await counted(store, id), 5)
    const next = new ToolQuotaReservation(store, id, 5, 50)
    t.equal(await next.take(), false)
    await next.giveBack()
    t.equal(await counted(store, id), 5)
  })

  await t.test('20 concurrent runs on two instances, 10 concurrent calls each, limit 37: never past it, exact after', async (t) => {
    const [a, b] = openTwo()
    t.teardown(async () => { await Promise.all([...new Set([a, b])].map(async (s) => { await s.close() })) })
    const id = tenant()
    let granted = 0
    let peak = 0
    await Promise.all(Array.from({ length: 20 }, async (_, r) => {
      const store = r % 2 === 0 ? a : b
      const run = new ToolQuotaReservation(store, id, 37, 10)
      const got = await Promise.all(Array.from({ length: 10 }, async () => await run.take()))
      granted += got.filter(Boolean).length
      peak = Math.max(peak, await counted(store, id))
      await run.giveBack()
    }))
    t.ok(peak <= 37, `the counter never passed the limit (peak ${peak})`)
    t.ok(granted <= 37 && granted > 0, `calls granted: ${granted}`)
    t.equal(await counted(a, id), granted, 'after every run gave back, the counter is the calls granted')
  })

  await t.test('no unit held and the store down: take throws (the gateway fails closed)', async (t) => {
    const store = open()
    const run = new ToolQuotaReservation(store, tenant(), 5, 5)
    await store.close()
    await t.rejects(run.take(), { code: 'STORE_UNAVAILABLE' })
  })
}

t.test('memory store', async (t) => {
  await contract(t, () => createMemoryStore(), () => { const store = createMemoryStore(); return [store, store] })
})

const redisUrl = process.env.REDIS_URL
if (redisUrl !== undefined && redisUrl !== '') {
  t.test('redis store', async (t) => {
    await contract(t, () => createRedisStore(redisUrl).store, () => [createRedisStore(redisUrl).store, createRedisStore(redisUrl).store])
  })
}
