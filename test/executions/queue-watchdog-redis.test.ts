// The queue's watchdog against a real Redis: a BullMQ worker whose blocking connection hangs (it
// connects, and nothing ever answers it: what a connection to a failed-over node can do) takes
// no job, however long; the watchdog recreates it with a new blocking connection, the waiting job
// is taken, and close() still ends. A proxy in front of one server hangs the queue's second
// connection (the worker's blocking one), so this runs in CI's standalone Redis pass.
import net from 'node:net'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createBullmqQueue } from '../../services/executions/bullmq-queue.ts'
import { isClusterUrl } from '../../services/store/redis-connection.ts'
import { waitFor } from '../support/wait-for.ts'

const { REDIS_URL } = process.env

/** Forwards every connection to Redis but the `hung`-th, which is accepted and never answered. */
async function hangingProxy (url: string, hung: number): Promise<{ url: string, close: () => Promise<void> }> {
  const target = new URL(url)
  const sockets = new Set<net.Socket>()
  let count = 0
  const server = net.createServer((client) => {
    sockets.add(client)
    client.on('error', () => {})
    if (++count === hung) return
    const upstream = net.connect(Number(target.port), target.hostname)
    sockets.add(upstream)
    upstream.on('error', () => { client.destroy() })
    client.on('close', () => { upstream.destroy() })
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => { resolve() }))
  const proxied = new URL(url)
  proxied.hostname = '127.0.0.1'
  proxied.port = String((server.address() as net.AddressInfo).port)
  return {
    url: proxied.toString(),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

if (REDIS_URL !== undefined && !isClusterUrl(REDIS_URL)) {
  t.test('a worker whose blocking connection hangs is recreated, and the waiting job is taken', async (t) => {
    const proxy = await hangingProxy(REDIS_URL, 2)
    t.teardown(proxy.close)
    const warnings: string[] = []
    const queue = createBullmqQueue(proxy.url, { leaseMs: 5000, queueName: `watchdog-${randomUUID().slice(0, 8)}`, stuckAfterMs: 500, log: { warn: (_obj, msg) => { warnings.push(msg) } } })
    let closed = false
    t.teardown(async () => { if (!closed) await queue.close() })
    const taken: string[] = []
    const add = async (executionId: string): Promise<void> => { await queue.add({ executionId, tenantId: 't', userId: 'u', permissions: [], code: 'return 1', timeoutMs: 1000 }) }
    // A worker's first look at the queue needs no blocking read, so a job already waiting when it
    // starts is taken without the hung connection. The job is added first: a worker that started
    // first would find the queue empty and wait for this job on the hung connection (CI saw it).
    const first = randomUUID()
    await waitFor(async () => { await add(first); return true }, { message: 'the first job is added' })
    queue.work(async (job) => { taken.push(job.executionId); return { done: true } }, 4, async () => {})
    await waitFor(() => taken.includes(first), { message: 'the first job is taken' })
    t.equal(warnings.length, 0, 'with no recreation')
    // Drained, the worker now waits on its blocking connection, which never answers.
    const second = randomUUID()
    await add(second)
    await waitFor(() => taken.includes(second), { timeout: 30_000, message: 'the waiting job is taken' })
    t.ok(warnings.some((msg) => msg.includes('recreating it')), 'by a recreated worker')
    t.same(taken, [first, second], 'each once')
    await queue.close()
    closed = true
    t.pass('close() ended')
  })
}
