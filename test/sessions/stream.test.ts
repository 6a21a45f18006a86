// Streaming over an encrypted session: POST /api/sessions/:id/execute with Accept
// text/event-stream or application/x-ndjson, frames built and opened by hand (fixtures.ts).
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant, tokenFor, bearer } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'
import { rawSession, sessionOnTwoInstances, type RawSession } from './fixtures.ts'
import type { Frame } from '../../services/sessions/key-schedule.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'

const NDJSON = 'application/x-ndjson'
const SSE = 'text/event-stream'

/** The `{frame}` objects of a streamed body, in order, whichever the format. */
function framesOf (body: string, format: typeof NDJSON | typeof SSE): Frame[] {
  if (format === NDJSON) return body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line).frame as Frame)
  return body.split('\n\n').filter((chunk) => chunk !== '').map((chunk) => {
    const lines = chunk.split('\n')
    if (lines.length !== 1 || !lines[0]!.startsWith('data: ')) throw new Error(`unexpected SSE event: ${chunk}`)
    return JSON.parse(lines[0]!.slice('data: '.length)).frame as Frame
  })
}

const clearEvents = (body: string): StreamEvent[] => body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as StreamEvent)

async function streamed (session: RawSession, app: FastifyInstance, headers: Record<string, string>, counter: number, body: unknown, format: typeof NDJSON | typeof SSE = NDJSON) {
  return await app.inject({ method: 'POST', url: `/api/sessions/${session.sessionId}/execute`, headers: { ...headers, accept: format }, payload: { frame: session.frame(counter, body) } })
}

// Everything in an event but what differs between two runs of the same script: times, ids, durations.
function comparable (event: StreamEvent): unknown {
  const data = { ...event.data } as Record<string, any>
  if (event.type === 'tool_result') delete data.durationMs
  if (event.type === 'final') {
    const { executionId, stats, ...result } = data.result
    data.result = { ...result, toolCallCount: stats.toolCallCount }
  }
  return { seq: event.seq, type: event.type, data }
}

const SCRIPT = `
  console.log('first line')
  const doc = await callTool('data:insert', { document: { n: 1 } })
  console.warn('second', doc.n)
  return { n: doc.n, ok: true }`

t.test('streaming over an encrypted session', async (t) => {
  const app = await buildApp(t, { RATE_LIMIT_PER_MINUTE: '100000' })
  const usage = async (headers: Record<string, string>) => (await app.inject({ method: 'GET', url: '/api/usage', headers })).json()

  for (const format of [NDJSON, SSE] as const) {
    t.test(`${format}: the same events as the plain stream, one sealed frame each`, async (t) => {
      const tenant = await createTenant(app, 'sess-stream')
      const clear = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, accept: NDJSON }, payload: { code: SCRIPT } })
      t.equal(clear.statusCode, 200)
      const expected = clearEvents(clear.body)
      t.same(expected.map((e) => e.type), ['started', 'log', 'tool_call', 'tool_result', 'log', 'final'])

      const session = await rawSession(app, tenant.headers)
      const res = await streamed(session, app, tenant.headers, 0, { code: SCRIPT }, format)
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], format === NDJSON ? /^application\/x-ndjson/ : /^text\/event-stream/)
      t.equal(res.headers['cache-control'], 'no-cache')
      const frames = framesOf(res.body, format)
      const events = frames.map((frame) => session.open(frame) as StreamEvent)
      t.same(events.map(comparable), expected.map(comparable), 'types, seq and data as in the clear')
      for (const event of events) t.same(Object.keys(event), ['seq', 'type', 'at', 'data'])
      t.match(events.at(-1)?.data, { result: { success: true, value: { n: 1, ok: true }, logs: [{ level: 'log', message: 'first line' }, { level: 'warn', message: 'second 1' }] } })
      t.same(frames.map((f) => f.counter), frames.map((_f, i) => i), 'server counters strictly increase, from the first frame of the session')
      for (const secret of ['first line', 'second 1', 'data:insert']) t.notOk(res.body.includes(secret), `no plaintext (${secret}) in the stream`)
      t.equal((await usage(tenant.headers)).executions, 2)
    })
  }

  t.test('server counters never repeat across plain and streamed answers on one session', async (t) => {
    const tenant = await createTenant(app, 'sess-stream-ctr', { tier: 'enterprise' })
    const session = await rawSession(app, tenant.headers)
    const counters: number[] = []
    const plain = await session.execute(session.frame(0, { code: 'return 1' }))
    counters.push(plain.json().frame.counter)
    // 40 logs: more frames than the first reservation, so the stream reserves further blocks.
    const long = await streamed(session, app, tenant.headers, 1, { code: 'for (let i = 0; i < 40; i++) console.log(i); return 2' })
    const longFrames = framesOf(long.body, NDJSON)
    t.equal(longFrames.length, 42, 'started, 40 logs, final')
    t.equal(session.open(longFrames.at(-1)!).data.result.value, 2)
    counters.push(...longFrames.map((f) => f.counter))
    const after = await session.execute(session.frame(2, { code: 'return 3' }))
    t.equal(session.open(after.json().frame).value, 3)
    counters.push(after.json().frame.counter)
    const short = await streamed(session, app, tenant.headers, 3, { code: 'return 4' })
    counters.push(...framesOf(short.body, NDJSON).map((f) => f.counter))
    t.same([...counters].sort((a, b) => a - b), counters, 'strictly increasing in the order the client receives them')
    t.equal(new Set(counters).size, counters.length, 'no counter (no nonce) used twice')

    // Streams and plain answers of one session at the same time: still no counter twice.
    const [s1, s2, p1, p2] = await Promise.all([
      streamed(session, app, tenant.headers, 10, { code: 'for (let i = 0; i < 20; i++) console.log(i); return 1' }),
      streamed(session, app, tenant.headers, 11, { code: 'for (let i = 0; i < 20; i++) console.log(i); return 2' }),
      session.execute(session.frame(12, { code: 'return 3' })),
      session.execute(session.frame(13, { code: 'return 4' }))
    ])
    const concurrent: number[] = []
    for (const res of [s1, s2]) if (res.statusCode === 200) concurrent.push(...framesOf(res.body, NDJSON).map((f) => f.counter))
    for (const res of [p1, p2]) if (res.statusCode === 200) concurrent.push(res.json().frame.counter)
    t.ok(concurrent.length >= 1)
    t.equal(new Set([...counters, ...concurrent]).size, counters.length + concurrent.length, 'no counter used twice')
  })

  t.test('refusals before the run answer as without streaming', async (t) => {
    const tenant = await createTenant(app, 'sess-stream-refuse', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 1, maxCodeSizeKB: 1 } })
    const session = await rawSession(app, tenant.headers)
    const big = `return "${'x'.repeat(2000)}"`
    const tooLarge = await streamed(session, app, tenant.headers, 0, { code: big })
    t.equal(tooLarge.statusCode, 413)
    t.match(tooLarge.headers['content-type'], /^application\/json/)
    t.same(session.open(tooLarge.json().frame), { error: 'Code size limit exceeded (1 KB)', code: 'CODE_TOO_LARGE', limit: 1 })

    const bad = await streamed(session, app, tenant.headers, 1, { script: 'return 1' })
    t.equal(bad.statusCode, 400)
    t.equal(session.open(bad.json().frame).code, 'BAD_REQUEST')

    t.equal((await tenant.execute('return 1')).statusCode, 200, 'uses the one execution of the day')
    const clearQuota = await tenant.execute('return 1')
    const quota = await streamed(session, app, tenant.headers, 2, { code: 'return 1' })
    t.equal(quota.statusCode, 429)
    t.equal(quota.headers['retry-after'], clearQuota.headers['retry-after'])
    t.same(session.open(quota.json().frame), clearQuota.json())

    const good = session.frame(3, { code: 'return 1' })
    const flipped = Buffer.from(good.ciphertext, 'base64url')
    flipped[0] = (flipped[0] as number) ^ 1
    const stream = { ...tenant.headers, accept: NDJSON }
    const url = `/api/sessions/${session.sessionId}/execute`
    const tampered = await app.inject({ method: 'POST', url, headers: stream, payload: { frame: { counter: 3, ciphertext: flipped.toString('base64url') } } })
    t.equal(tampered.statusCode, 400)
    t.same(tampered.json(), { error: 'The frame does not decrypt with this session\'s key', code: 'DECRYPTION_FAILED' })
    const replayed = await app.inject({ method: 'POST', url, headers: stream, payload: { frame: session.frame(2, { code: 'return 1' }) } })
    t.equal(replayed.statusCode, 409)
    t.same(replayed.json(), { error: 'The frame\'s counter is not above the last one this session accepted', code: 'REPLAYED_FRAME' })
    const other = await app.inject({ method: 'POST', url, headers: { ...bearer(tokenFor({ tenantId: tenant.tenantId, userId: 'mallory' })), accept: NDJSON }, payload: { frame: good } })
    t.equal(other.statusCode, 403)
    t.same(other.json(), { error: 'Forbidden: this session belongs to another tenant or user', code: 'FORBIDDEN' })
    t.equal((await usage(tenant.headers)).executions, 1, 'none of them ran')
  })

  t.test('heartbeats in a silent run are sealed frames too, repeating the last seq', async (t) => {
    // Starter: its 30 s limit lets the run outlast the 5 s heartbeat (a free run stops at 5 s, racing it).
    const tenant = await createTenant(app, 'sess-stream-beat', { tier: 'starter' })
    const session = await rawSession(app, tenant.headers)
    // Silent for longer than the 5 s heartbeat interval.
    const res = await streamed(session, app, tenant.headers, 0, { code: 'const end = Date.now() + 5600; while (Date.now() < end) {} return 1' })
    t.equal(res.statusCode, 200)
    const frames = framesOf(res.body, NDJSON)
    const events = frames.map((frame) => session.open(frame) as StreamEvent)
    t.same(events.map((e) => [e.seq, e.type]), [[1, 'started'], [1, 'heartbeat'], [2, 'final']])
    t.same(events[1]?.data, {})
    t.same(frames.map((f) => f.counter), [0, 1, 2])
    t.notOk(res.body.includes('heartbeat'), 'nothing in the clear tells a heartbeat from an event')
  })

  t.test('a client that leaves the stream cancels the run and frees its slot', async (t) => {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const tenant = await createTenant(app, 'sess-stream-leave', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 1000, maxExecutionDurationMs: 20_000 } })
    const session = await rawSession(app, tenant.headers)
    const left = new AbortController()
    const res = await fetch(`http://127.0.0.1:${port}/api/sessions/${session.sessionId}/execute`, {
      method: 'POST',
      headers: { ...tenant.headers, 'content-type': 'application/json', accept: NDJSON },
      body: JSON.stringify({ frame: session.frame(0, { code: 'while (true) {}' }) }),
      signal: left.signal
    })
    t.equal(res.status, 200)
    // Read until `started` (the run is admitted and holds the tenant's one slot), then leave.
    // (A log before a CPU-bound loop is not sent live, so `started` is what there is to wait for.)
    const reader = res.body!.getReader()
    let text = ''
    while (!text.includes('\n')) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    t.equal(session.open(JSON.parse(text.slice(0, text.indexOf('\n'))).frame).type, 'started')
    left.abort()
    await reader.cancel().catch(() => {})
    const cancelled = await waitFor(async () => {
      await app.audit.flush()
      const audit = (await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })).json() as { entries: Array<{ errorCode: string | null }> }
      return audit.entries.find((e) => e.errorCode === 'CANCELLED')
    }, { message: 'the run audited as cancelled' })
    t.ok(cancelled)
    // free tier: one concurrent run. The slot is released once the runner reports the cancelled
    // run's CPU free (just after its audit row), well before the run's own 20 s limit.
    const next = await waitFor(async () => {
      const res = await tenant.execute('return "next"')
      return res.statusCode === 200 ? res : undefined
    }, { message: 'a run admitted in the freed slot' })
    t.equal(next?.json().value, 'next')
  })
})

const { REDIS_URL, DATABASE_URL } = process.env
if (REDIS_URL !== undefined && DATABASE_URL !== undefined) {
  t.test('two instances on one Redis: a stream on one and answers on the other never share a counter', async (t) => {
    const { a, b, tenant, session } = await sessionOnTwoInstances(t, 'sess-stream-two', 'enterprise')
    const onB = async (counter: number, code: string) => await b.inject({ method: 'POST', url: `/api/sessions/${session.sessionId}/execute`, headers: tenant.headers, payload: { frame: session.frame(counter, { code }) } })
    // A's stream is accepted (its headers are here) and still running while B answers frames.
    await a.listen({ port: 0, host: '127.0.0.1' })
    const { port } = a.server.address() as { port: number }
    const streamA = await fetch(`http://127.0.0.1:${port}/api/sessions/${session.sessionId}/execute`, {
      method: 'POST',
      headers: { ...tenant.headers, 'content-type': 'application/json', accept: NDJSON },
      body: JSON.stringify({ frame: session.frame(0, { code: 'for (let i = 0; i < 30; i++) { console.log(i); await callTool("data:insert", { document: { i } }) } return "a"' }) })
    })
    t.equal(streamA.status, 200)
    const plainB = [await onB(1, 'return 1'), await onB(2, 'return 2'), await onB(3, 'return 3')]
    const frames = framesOf(await streamA.text(), NDJSON)
    t.equal(session.open(frames.at(-1)!).data.result.value, 'a')
    const counters = frames.map((f) => f.counter)
    for (const res of plainB) {
      t.equal(res.statusCode, 200)
      counters.push(res.json().frame.counter)
    }
    t.equal(new Set(counters).size, counters.length, 'no counter used twice across instances')
    // And after: a stream on B, a plain answer on A, in sequence, keep increasing.
    const streamB = await b.inject({ method: 'POST', url: `/api/sessions/${session.sessionId}/execute`, headers: { ...tenant.headers, accept: NDJSON }, payload: { frame: session.frame(10, { code: 'console.log(1); return 1' }) } })
    const bFrames = framesOf(streamB.body, NDJSON).map((f) => f.counter)
    const plainA = (await session.execute(session.frame(11, { code: 'return 2' }))).json().frame.counter
    t.ok(Math.min(...bFrames) > Math.max(...counters), 'B\'s stream comes after every earlier counter')
    t.ok(plainA > Math.max(...bFrames), 'A\'s answer after B\'s stream')
  })
}
