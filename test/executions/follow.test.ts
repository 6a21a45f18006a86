// follow(): every event exactly once, in order. Events that come by notification in sequence are
// passed on without reading the log again; a lost notification is filled from the log, and a gap
// the log cannot fill waits for the next event instead of reading in a loop.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createMemoryEventLog, follow, followIfAllowed, type EventLog, type StreamEvent } from '../../services/executions/event-log.ts'

/** The in-process log, counting reads, with notifications that the test can lose or fake. */
function observedLog (): { log: EventLog, reads: () => number, watching: () => number, loseNext: () => void, push: (id: string, event: StreamEvent) => void } {
  const inner = createMemoryEventLog()
  let reads = 0
  let lose = false
  const watchers = new Map<string, (event: StreamEvent) => void>()
  const log: EventLog = {
    ...inner,
    async read (id, after, limit) { reads++; return await inner.read(id, after, limit) },
    watch (id, onEvent) {
      watchers.set(id, onEvent)
      const stop = inner.watch(id, (event) => { if (lose) lose = false; else onEvent(event) })
      return () => { watchers.delete(id); stop() }
    }
  }
  return { log, reads: () => reads, watching: () => watchers.size, loseNext: () => { lose = true }, push: (id, event) => watchers.get(id)?.(event) }
}

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** Follows a stream from `after`, collecting into `seen`; resolves once the follow has had its first read. */
async function following (log: EventLog, id: string, after = 0, signal = new AbortController().signal): Promise<{ seen: StreamEvent[], done: Promise<void> }> {
  const seen: StreamEvent[] = []
  const done = (async () => { for await (const event of follow(log, id, after, signal)) seen.push(event) })()
  await tick()
  return { seen, done }
}

t.test('events that arrive in sequence are passed on without reading the log again', async (t) => {
  const { log, reads } = observedLog()
  const id = randomUUID()
  await log.append(id, 'queued', {})
  const { seen, done } = await following(log, id)
  for (let i = 0; i < 20; i++) {
    await log.append(id, 'log', { level: 'info', message: String(i) })
    if (i % 3 === 0) await tick()
  }
  await log.append(id, 'final', { result: {} })
  await done
  t.same(seen.map((e) => e.seq), Array.from({ length: 22 }, (_, i) => i + 1), 'every event once, in order')
  t.equal(reads(), 1, 'one read: the events before the watch; the rest came by notification')
})

t.test('a lost notification is filled from the log when the next one shows the gap', async (t) => {
  const { log, reads, loseNext } = observedLog()
  const id = randomUUID()
  await log.append(id, 'queued', {})
  const { seen, done } = await following(log, id)
  await log.append(id, 'started', {})
  await tick()
  loseNext()
  await log.append(id, 'log', { level: 'info', message: 'lost' })
  await tick()
  t.same(seen.map((e) => e.seq), [1, 2], 'nothing passed on past the lost notification yet')
  await log.append(id, 'log', { level: 'info', message: 'after' })
  await log.append(id, 'final', { result: {} })
  await done
  t.same(seen.map((e) => e.seq), [1, 2, 3, 4, 5], 'the lost event came from the log, in its place, and nothing twice')
  t.equal(seen[2]!.data.message, 'lost')
  t.equal(reads(), 2, 'one read to fill the gap')
})

t.test('a lost final notification is found by the periodic re-read', async (t) => {
  const { log, loseNext } = observedLog()
  const id = randomUUID()
  await log.append(id, 'queued', {})
  const { seen, done } = await following(log, id)
  loseNext()
  await log.append(id, 'final', { result: {} })
  await done
  t.same(seen.map((e) => e.type), ['queued', 'final'])
})

t.test('a gap the log cannot fill does not read in a loop', async (t) => {
  const { log, reads, push } = observedLog()
  const id = randomUUID()
  await log.append(id, 'queued', {})
  const controller = new AbortController()
  const { seen, done } = await following(log, id, 0, controller.signal)
  // A notification from nowhere (seq 7 while the log ends at 1): one read finds nothing to fill.
  push(id, { seq: 7, type: 'log', at: new Date().toISOString(), data: { level: 'info', message: 'stray' } })
  for (let i = 0; i < 20; i++) await tick()
  t.equal(reads(), 2, 'the initial read and one for the gap, then it waits')
  controller.abort()
  await done
  t.same(seen.map((e) => e.seq), [1], 'nothing out of sequence was passed on')
})

t.test('a resume yields exactly what follows, live events included', async (t) => {
  const { log } = observedLog()
  const id = randomUUID()
  for (const type of ['queued', 'started'] as const) await log.append(id, type, {})
  await log.append(id, 'log', { level: 'info', message: 'a' })
  const { seen, done } = await following(log, id, 2)
  await log.append(id, 'final', { result: {} })
  await done
  t.same(seen.map((e) => e.seq), [3, 4])
})

t.test('followIfAllowed: the stream only if the check passes, and no watch left behind when it does not', async (t) => {
  const { log, watching } = observedLog()
  const id = randomUUID()
  for (const type of ['queued', 'started'] as const) await log.append(id, type, {})
  const signal = new AbortController().signal
  t.equal(await followIfAllowed(log, id, signal, async () => false), undefined, 'refused: nothing handed out')
  await tick()
  t.equal(watching(), 0, 'the follow that began meanwhile stopped watching')
  await t.rejects(followIfAllowed(log, id, signal, async () => { throw new Error('store down') }), /store down/)
  await tick()
  t.equal(watching(), 0, 'nor when the check failed')
  const events = await followIfAllowed(log, id, signal, async () => true)
  const seen: StreamEvent[] = []
  const done = (async () => { for await (const event of events!) seen.push(event) })()
  await tick()
  await log.append(id, 'final', { result: {} })
  await done
  t.same(seen.map((e) => e.type), ['queued', 'started', 'final'], 'allowed: every event, the first read included')
  t.equal(watching(), 0)
})
