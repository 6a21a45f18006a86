// The session client (src/session.ts: Web Crypto and fetch only) against a real started service
// (the repository's server.ts on its embedded defaults), pinned to the thumbprint it prints.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { openSession, EnclaveSessionError, type StreamEvent } from '../src/session.ts'
import { startService, type StartedService } from './started-service.ts'

let service: StartedService
let baseUrl = ''
let pinnedThumbprint = ''
let token: StartedService['token']

before(async () => {
  service = await startService()
  baseUrl = service.baseUrl
  pinnedThumbprint = service.pinnedThumbprint
  token = (tenantId) => service.token(tenantId, 'session-test')
})
after(() => { service.stop() })

test('execute and stream over one session', async () => {
  const session = await openSession({ baseUrl, token: token('session-a'), pinnedThumbprint })
  assert.equal((await session.execute('return 6 * 7')).value, 42)
  const events: StreamEvent[] = []
  for await (const event of session.stream('console.log("one"); console.log("two"); return "done"')) events.push(event)
  assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'started'], [2, 'log'], [3, 'log'], [4, 'final']])
  assert.deepEqual(events.slice(1, 3).map((e) => e.data), [{ level: 'log', message: 'one' }, { level: 'log', message: 'two' }])
  assert.equal((events[3]!.data.result as { value: unknown }).value, 'done')
  assert.equal((await session.execute('return 1')).value, 1, 'the session goes on after a stream')
})

test('a stream whose frame was altered on the way is refused, and the session closes', async () => {
  let tamper = false
  // A relay that flips one bit of the second streamed frame's ciphertext.
  const relay: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (!tamper || !(res.headers.get('content-type') ?? '').startsWith('application/x-ndjson')) return res
    const lines = (await res.text()).split('\n').filter((l) => l !== '')
    const { frame } = JSON.parse(lines[1]!)
    const bytes = Buffer.from(frame.ciphertext, 'base64url')
    bytes[0] = bytes[0]! ^ 1
    lines[1] = JSON.stringify({ frame: { ...frame, ciphertext: bytes.toString('base64url') } })
    return new Response(lines.join('\n') + '\n', { status: res.status, headers: res.headers })
  }
  const session = await openSession({ baseUrl, token: token('session-b'), pinnedThumbprint, fetch: relay })
  tamper = true
  const seen: string[] = []
  await assert.rejects(async () => { for await (const event of session.stream('console.log(1); return 2')) seen.push(event.type) },
    (err: unknown) => err instanceof EnclaveSessionError && err.code === 'BAD_RESPONSE')
  assert.deepEqual(seen, ['started'], 'nothing after the altered frame')
  await assert.rejects(session.execute('return 1'), (err: unknown) => err instanceof EnclaveSessionError && err.code === 'SESSION_CLOSED')
})
