// The Redis Streams event log on a real Redis (registered only when REDIS_URL is set; CI's real
// pass runs it): one gapless sequence, and no event appended twice when a reply is lost.
import { randomUUID } from 'node:crypto'
import net from 'node:net'
import t, { type Test } from 'tap'
import { createRedisEventLog } from '../../services/executions/redis-event-log.ts'
import { eventKeys } from '../../services/executions/execution-keys.ts'
import { EVENTS_TTL_MS } from '../../services/executions/event-log.ts'
import { isClusterUrl, openRedis } from '../../services/store/redis-connection.ts'
import { waitFor } from '../support/wait-for.ts'

const { REDIS_URL } = process.env

/**
 * A loopback relay to Redis that can swallow Redis's replies while still forwarding commands,
 * then cut every connection: the client's command ran, but its reply never came.
 */
async function replyEatingRelay (target: URL): Promise<{ url: string, eatReplies: () => void, cut: () => void, close: () => Promise<void> }> {
  let eating = false
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => { client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => { if (!eating) client.write(chunk) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = new URL(target.toString())
  url.hostname = '127.0.0.1'
  url.port = String((server.address() as net.AddressInfo).port)
  return {
    url: url.toString(),
    eatReplies: () => { eating = true },
    cut: () => { for (const socket of sockets) socket.destroy(); eating = false },
    close: async () => { for (const socket of sockets) socket.destroy(); await new Promise<void>((resolve) => server.close(() => { resolve() })) }
  }
}

/** A Redis event log and a plain connection to the same server beside it, for one new execution id. */
function logBesideDirect (t: Test, url: string): { log: ReturnType<typeof createRedisEventLog>, direct: ReturnType<typeof openRedis>, id: string } {
  const log = createRedisEventLog(url)
  const direct = openRedis(url)
  t.teardown(async () => { await log.close(); direct.disconnect() })
  return { log, direct, id: randomUUID() }
}

if (REDIS_URL !== undefined) {
  t.test('appends share one gapless sequence and read back in order', async (t) => {
    const log = createRedisEventLog(REDIS_URL)
    t.teardown(async () => { await log.close() })
    const id = randomUUID()
    const appended = []
    for (const type of ['queued', 'started', 'log', 'final'] as const) appended.push(await log.append(id, type, type === 'log' ? { level: 'log', message: 'x' } : {}))
    t.same(appended.map((e) => e.seq), [1, 2, 3, 4])
    t.same((await log.read(id, 0, 10)).map((e) => [e.seq, e.type]), [[1, 'queued'], [2, 'started'], [3, 'log'], [4, 'final']])
    t.same((await log.read(id, 2, 10)).map((e) => e.seq), [3, 4], 'after a seq: only what follows it')
  })
}

if (REDIS_URL !== undefined) {
  t.test('every key of a stream expires: events between the first and final leave the expiry, keep() and final set it', async (t) => {
    const { log, direct: redis, id } = logBesideDirect(t, REDIS_URL)
    const keys = Object.values(eventKeys(id))
    const ttls = async (): Promise<number[]> => await Promise.all(keys.map(async (key) => await redis.pttl(key)))
    await log.append(id, 'queued', {}, 'tenant-a')
    await log.append(id, 'started', {})
    for (let i = 0; i < 5; i++) await log.append(id, 'log', { level: 'log', message: String(i) })
    for (const ttl of await ttls()) t.ok(ttl > 0 && ttl <= EVENTS_TTL_MS, `each key expires within the ttl (${ttl})`)
    // A waiting run's stream is kept longer; its next event sets it back.
    await log.keep(id, 10 * EVENTS_TTL_MS)
    await log.append(id, 'log', { level: 'log', message: 'after the wait' })
    for (const ttl of await ttls()) t.ok(ttl > 0 && ttl <= EVENTS_TTL_MS, `set back within the ttl (${ttl})`)
    // Most of the ttl gone: the next event sets it again; and final always does.
    await Promise.all(keys.map(async (key) => await redis.pexpire(key, 1000 * 60 * 10)))
    await log.append(id, 'log', { level: 'log', message: 'late' })
    for (const ttl of await ttls()) t.ok(ttl > EVENTS_TTL_MS - 60_000, `set again once most of it had gone (${ttl})`)
    await Promise.all(keys.map(async (key) => await redis.pexpire(key, EVENTS_TTL_MS - 30_000)))
    await log.append(id, 'final', { result: {} })
    for (const ttl of await ttls()) t.ok(ttl > EVENTS_TTL_MS - 30_000, `final sets the whole ttl again (${ttl})`)
  })
}

// A relay in front of one server: a cluster client would learn the nodes' own addresses and go
// round it, so this runs against a single Redis (CI's standalone pass).
if (REDIS_URL !== undefined && !isClusterUrl(REDIS_URL)) {
  t.test('an append whose reply was lost with its connection is not appended twice when ioredis sends it again', async (t) => {
    const relay = await replyEatingRelay(new URL(REDIS_URL))
    const direct = openRedis(REDIS_URL)
    const log = createRedisEventLog(relay.url)
    t.teardown(async () => { await log.close(); direct.disconnect(); await relay.close() })
    const id = randomUUID()
    t.equal((await log.append(id, 'queued', {})).seq, 1)

    relay.eatReplies()
    const started = log.append(id, 'started', {})
    const stream = `tenant-enclave:events:{${id}}`
    await waitFor(async () => (await direct.xlen(stream)) === 2, { message: 'Redis ran the append' })
    relay.cut()
    // ioredis reconnects and sends the unanswered command again: the same append, answered again.
    const event = await started
    t.match(event, { seq: 2, type: 'started' })
    t.equal(await direct.xlen(stream), 2, 'one event in the stream, not two')
    t.same((await log.read(id, 0, 10)).map((e) => [e.seq, e.type]), [[1, 'queued'], [2, 'started']])
    t.equal((await log.append(id, 'final', {})).seq, 3, 'the sequence goes on without a gap')
  })
}

if (REDIS_URL !== undefined) {
  t.test('a long run leaves a bounded record of its appends in Redis, not one entry per event', async (t) => {
    // A script may log empty lines until its console budget is spent: thousands of events, each
    // of which used to leave its append id in Redis for the stream's hour.
    const { log, direct, id } = logBesideDirect(t, REDIS_URL)
    await log.append(id, 'queued', {}, 'tenant-a')
    for (let i = 0; i < 300; i++) await log.append(id, 'log', { level: 'log', message: '' })
    const final = await log.append(id, 'final', { result: { success: true } })
    t.equal(final.seq, 302)
    const appends = await direct.hlen(eventKeys(id).appends)
    t.ok(appends <= 2 * 64 + 1, `the record holds the last 64 appends and the final's seq (${appends} fields)`)
    t.same(await log.finalOf(id), final, 'the final is still found')
    t.same(await log.append(id, 'final', { result: { success: false } }), final, 'and a second final still answers the first')
    t.same((await log.read(id, 0, 500)).map((e) => e.seq), Array.from({ length: 302 }, (_v, i) => i + 1), 'every event is there, in order')
  })
}
