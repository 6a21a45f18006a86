// The sealed event stream with a real session service (in-process store, a clock the test
// moves): frames in order with fresh counters, and a session that expires mid-stream.
import t, { type Test } from 'tap'
import { createECDH } from 'node:crypto'
import { loadIdentityKey } from '../../services/sessions/identity-key.ts'
import { createMemorySessionStore } from '../../services/sessions/session-store.ts'
import { createSessionService } from '../../services/sessions/session-service.ts'
import { C2S, deriveSessionKeys, openFrame, S2C, sealFrame, type Frame } from '../../services/sessions/key-schedule.ts'
import { SealedEventStream } from '../../services/sessions/sealed-event-stream.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'

const owner = { tenantId: 'tenant-a', userId: 'user-a' }

async function setup (t: Test) {
  let clock = Date.now()
  const now = (): number => clock
  const store = createMemorySessionStore(now)
  t.teardown(async () => { await store.close() })
  const service = createSessionService({ store, identity: loadIdentityKey(), ttlMs: 60_000, now })
  const ecdh = createECDH('prime256v1')
  ecdh.generateKeys()
  const opened = await service.open(owner, ecdh.getPublicKey('base64url', 'uncompressed'))
  const keys = deriveSessionKeys(ecdh.computeSecret(Buffer.from(opened.serverPublicKey, 'base64url')), opened.sessionId)
  return {
    service,
    sessionId: opened.sessionId,
    frame: (counter: number) => sealFrame(keys.c2s, C2S, counter, JSON.stringify({ code: 'return 1' })),
    open: (frame: Frame) => JSON.parse(openFrame(keys.s2c, S2C, frame).toString('utf8')),
    advance: (ms: number) => { clock += ms }
  }
}

async function bodyText (stream: SealedEventStream): Promise<string> {
  let text = ''
  for await (const chunk of stream.body) text += String(chunk)
  return text
}

const event = (seq: number, type: StreamEvent['type'] = 'log'): StreamEvent => ({ seq, type, at: new Date().toISOString(), data: { level: 'log', message: String(seq) } })

t.test('events written at once come out sealed, in order, with increasing counters past the first block', async (t) => {
  const session = await setup(t)
  const accepted = await session.service.accept(owner, session.sessionId, session.frame(0), { expectedFrames: 2 })
  const stream = new SealedEventStream('ndjson', accepted.seal, () => { t.fail('no failure') })
  const text = bodyText(stream)
  for (let seq = 1; seq <= 20; seq++) stream.write(event(seq, seq === 20 ? 'final' : 'log'))
  await stream.end()
  const frames = (await text).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).frame as Frame)
  t.same(frames.map((f) => session.open(f).seq), Array.from({ length: 20 }, (_v, i) => i + 1))
  // Blocks of 2, 4, 8, 16, each with its last counter kept in hand for a last frame (sealLast)
  // and skipped when the next block comes: no other gap while nobody else takes counters.
  t.same(frames.map((f) => f.counter), [0, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22], 'blocks of 2, 4, 8, 16, less the counter in hand')
  const plain = await session.service.accept(owner, session.sessionId, session.frame(1))
  t.equal((await plain.seal({ ok: true })).counter, 2 + 4 + 8 + 16, 'the next answer starts after the stream\'s last block')
})

t.test('a session that expires mid-stream: the stream stops (no frame it cannot reserve), failure told once', async (t) => {
  const session = await setup(t)
  const accepted = await session.service.accept(owner, session.sessionId, session.frame(0), { expectedFrames: 2 })
  const failures: unknown[] = []
  const stream = new SealedEventStream('sse', accepted.seal, (err) => { failures.push(err) })
  const text = bodyText(stream)
  stream.write(event(1, 'started'))
  stream.write(event(2))
  session.advance(61_000)
  stream.write(event(3))
  stream.write(event(4, 'final'))
  await stream.end()
  const chunks = (await text).split('\n\n').filter((c) => c !== '')
  t.same(chunks.map((c) => session.open(JSON.parse(c.slice('data: '.length)).frame).seq), [1], 'the frames of the reserved block (one counter kept in hand), then nothing')
  t.equal(failures.length, 1)
  t.match(failures[0], { code: 'SESSION_EXPIRED' })
})

t.test('a session that expires mid-stream, with an ending: the stream ends with a sealed final on the counter in hand', async (t) => {
  const session = await setup(t)
  const accepted = await session.service.accept(owner, session.sessionId, session.frame(0), { expectedFrames: 2 })
  const failures: unknown[] = []
  const ending = { sealLast: accepted.sealLast, expired: (err: unknown) => (err as { code?: string }).code === 'SESSION_EXPIRED', result: () => ({ success: false, error: { code: 'SESSION_ENDED' } }) }
  const stream = new SealedEventStream('ndjson', accepted.seal, (err) => { failures.push(err) }, ending)
  const text = bodyText(stream)
  stream.write(event(1, 'started'))
  session.advance(61_000)
  stream.write(event(2))
  stream.write(event(3, 'final'))
  await stream.end()
  const frames = (await text).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).frame as Frame)
  t.same(frames.map((f) => f.counter), [0, 1])
  t.match(frames.map((f) => session.open(f)), [{ seq: 1, type: 'started' }, { seq: 2, type: 'final', data: { result: { error: { code: 'SESSION_ENDED' } } } }])
  t.equal(failures.length, 1, 'the run is told to stop')
  await t.rejects(accepted.sealLast({}), { code: 'SESSION_EXPIRED' }, 'the counter in hand is used once')
})
