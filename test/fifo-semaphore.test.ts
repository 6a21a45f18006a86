import t from 'tap'
import { FifoSemaphore, KeyedSemaphore, SemaphoreTimeoutError } from '../services/fifo-semaphore.ts'

t.test('a FifoSemaphore admits up to its limit and serves waiters in order', async (t) => {
  const semaphore = new FifoSemaphore(2)
  const order: string[] = []
  const a = await semaphore.acquire()
  const b = await semaphore.acquire()
  const waiting = ['c', 'd', 'e'].map(async (name) => { const release = await semaphore.acquire(); order.push(name); return release })
  t.same([semaphore.inUse, semaphore.waiting], [2, 3])
  a()
  a() // a second call releases nothing
  const c = await waiting[0]
  t.same([semaphore.inUse, semaphore.waiting, order], [2, 2, ['c']], 'the slot passed to the first waiter')
  b()
  c()
  const [d, e] = await Promise.all([waiting[1], waiting[2]])
  t.same(order, ['c', 'd', 'e'])
  d()
  e()
  t.equal(semaphore.idle, true)
  t.throws(() => new FifoSemaphore(0), RangeError)
})

t.test('a wait past its bound leaves the queue', async (t) => {
  const semaphore = new FifoSemaphore(1)
  const held = await semaphore.acquire()
  await t.rejects(semaphore.acquire(0), SemaphoreTimeoutError)
  t.equal(semaphore.waiting, 0)
  held()
  t.equal(semaphore.idle, true)
})

t.test('a KeyedSemaphore limits each key alone and forgets idle keys', async (t) => {
  const semaphore = new KeyedSemaphore(1)
  const a = await semaphore.acquire('a')
  const b = await semaphore.acquire('b')
  t.same([semaphore.inUse('a'), semaphore.inUse('b')], [1, 1], 'a full key does not hold up another')
  let second = false
  const next = semaphore.acquire('a').then((release) => { second = true; return release })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(second, false, 'the key\'s second holder waits')
  a()
  const release = await next
  t.equal(semaphore.inUse('a'), 1)
  release()
  b()
  t.same([semaphore.inUse('a'), semaphore.inUse('b')], [0, 0])
  t.equal((semaphore as unknown as { byKey: Map<string, unknown> }).byKey.size, 0, 'no entry kept for idle keys')
})

t.test('tryAcquire takes a free slot at once, and never one a waiter is owed', async (t) => {
  const semaphore = new FifoSemaphore(1)
  const first = semaphore.tryAcquire()
  t.ok(first !== undefined, 'a free slot is taken')
  t.equal(semaphore.tryAcquire(), undefined, 'none is free')
  const waiting = semaphore.acquire()
  first?.()
  t.equal(semaphore.tryAcquire(), undefined, 'the released slot went to the waiter')
  const second = await waiting
  t.equal(semaphore.inUse, 1)
  second()
  t.equal(semaphore.idle, true)
})
