// A submission appends `queued` alongside adding its job, so the run's first event can land
// before it. Both event logs (in process, and Redis Streams when REDIS_URL is set) keep `queued`
// as seq 1, once, with the owner the submission names, and tell watchers in that order.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createMemoryEventLog, type EventLog, type StreamEvent } from '../../services/executions/event-log.ts'
import { createRedisEventLog } from '../../services/executions/redis-event-log.ts'
import { waitFor } from '../support/wait-for.ts'

const { REDIS_URL } = process.env
const logs: Array<[string, () => EventLog]> = [['in process', createMemoryEventLog]]
if (REDIS_URL !== undefined) logs.push(['Redis Streams', () => createRedisEventLog(REDIS_URL)])

/** Redis subscribes in the background: appends made before it listens would not be told. */
async function listening (log: EventLog): Promise<void> {
  const probe = randomUUID()
  let heard = false
  const stop = log.watch(probe, () => { heard = true })
  try {
    await waitFor(async () => { if (!heard) await log.append(probe, 'log', { level: 'info', message: 'probe' }); return heard }, { message: 'the log hears its own appends' })
  } finally { stop() }
}

for (const [name, create] of logs) {
  t.test(name, async (t) => {
    const log = create()
    t.teardown(async () => { await log.close() })

    await t.test('the run\'s first event before the submission\'s queued: queued is still seq 1, once', async (t) => {
      const id = randomUUID()
      const watched: StreamEvent[] = []
      const stop = log.watch(id, (event) => watched.push(event))
      t.teardown(stop)
      await listening(log)
      const started = await log.append(id, 'started', {})
      t.match(started, { seq: 2, type: 'started' }, 'the run\'s event comes after a queued written for it')
      t.equal(await log.ownerOf(id), undefined, 'no owner yet: only the submission knows it')
      const queued = await log.append(id, 'queued', {}, 'tenant-a')
      t.match(queued, { seq: 1, type: 'queued' }, 'the submission\'s append answers the queued already there')
      t.equal(await log.ownerOf(id), 'tenant-a', 'and records the owner')
      t.equal((await log.append(id, 'final', { result: {} })).seq, 3, 'the sequence goes on without a gap')
      t.same((await log.read(id, 0, 10)).map((e) => [e.seq, e.type]), [[1, 'queued'], [2, 'started'], [3, 'final']])
      await waitFor(async () => watched.length === 3, { message: 'watchers told of every event' })
      t.same(watched.map((e) => [e.seq, e.type]), [[1, 'queued'], [2, 'started'], [3, 'final']], 'watchers told queued first, and once')
    })

    await t.test('queued first, as usual: one queued, and a second append of it answers the first', async (t) => {
      const id = randomUUID()
      t.match(await log.append(id, 'queued', {}, 'tenant-b'), { seq: 1, type: 'queued' })
      t.match(await log.append(id, 'started', {}), { seq: 2, type: 'started' })
      t.match(await log.append(id, 'queued', {}, 'tenant-b'), { seq: 1, type: 'queued' })
      t.same((await log.read(id, 0, 10)).map((e) => e.type), ['queued', 'started'])
    })
  })
}
