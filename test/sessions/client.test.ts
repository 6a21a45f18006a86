// The Web Crypto client (clients/typescript/src/session.ts) against the real service over
// loopback HTTP, through a relay that sees everything a TLS-terminating gateway would.
import t from 'tap'
import { createECDH, generateKeyPairSync, sign } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant } from '../helper.ts'
import { openSession, EnclaveSessionError } from '../../clients/typescript/src/session.ts'
import { handshakeTranscript, jwkThumbprint } from '../../services/sessions/key-schedule.ts'
import { HttpRelay } from './http-relay.ts'
import { waitFor } from '../support/wait-for.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return `http://127.0.0.1:${port}`
}

t.test('the session client', async (t) => {
  const app = await buildApp(t, { RATE_LIMIT_PER_MINUTE: '100000' })
  const origin = await listen(app)
  const pin = app.sessionIdentity.thumbprint
  const relayFor = async (hooks = {}): Promise<{ relay: HttpRelay, baseUrl: string }> => {
    const relay = new HttpRelay(origin, hooks)
    t.teardown(async () => { await relay.stop() })
    return { relay, baseUrl: await relay.start() }
  }

  t.test('a passive relay sees no plaintext of code, arguments, logs or result', async (t) => {
    const tenant = await createTenant(app, 'sess-client', { permissions: ['tool:data:insert'] })
    const { relay, baseUrl } = await relayFor()
    const session = await openSession({ baseUrl, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin })
    // Each secret is assembled at run time, so it appears only where the relay must not see it.
    const code = `
      const codeSecret = 'CODE-SECRET-7f3a'
      const doc = await callTool('data:insert', { document: { note: ['ARGS', 'SECRET', '91c2'].join('-') } })
      console.log(['LOG', 'SECRET', '5d0e'].join('-'))
      return { result: ['RESULT', 'SECRET', 'b84f'].join('-'), note: doc.note }`
    const result = await session.execute(code)
    t.equal(result.success, true)
    t.same(result.value, { result: 'RESULT-SECRET-b84f', note: 'ARGS-SECRET-91c2' })
    t.same(result.logs, [{ level: 'log', message: 'LOG-SECRET-5d0e' }])
    t.same(relay.exchanges.map((e) => `${e.method} ${e.path.replace(session.sessionId, ':id')} ${e.status}`),
      ['GET /.well-known/enclave-session.json 200', 'POST /api/sessions 201', 'POST /api/sessions/:id/execute 200'])
    for (const secret of ['CODE-SECRET', 'ARGS-SECRET', 'LOG-SECRET', 'RESULT-SECRET', 'callTool', 'data:insert', 'codeSecret']) {
      t.notOk(relay.seen.includes(secret), `the relay never saw ${secret}`)
    }
    const second = await session.execute('return 2', { timeoutMs: 1000 })
    t.equal(second.value, 2)
  })

  t.test('a wrong pin: refused before anything but the public key document is fetched', async (t) => {
    const tenant = await createTenant(app, 'sess-pin')
    const { relay, baseUrl } = await relayFor()
    const wrong = jwkThumbprint({ ...app.sessionIdentity.publicJwk, x: app.sessionIdentity.publicJwk.y })
    await t.rejects(openSession({ baseUrl, token: tenant.headers.authorization.slice(7), pinnedThumbprint: wrong }), { name: 'EnclaveSessionError', code: 'PIN_MISMATCH' })
    t.same(relay.exchanges.map((e) => e.path), ['/.well-known/enclave-session.json'], 'no session was opened, no code sent')
  })

  t.test('a relay that answers the handshake with its own ephemeral key: the client refuses', async (t) => {
    const tenant = await createTenant(app, 'sess-mitm')
    const own = createECDH('prime256v1')
    const ownPoint = own.generateKeys('base64url', 'uncompressed')
    const { relay, baseUrl } = await relayFor({
      response: (path: string, body: string) => path === '/api/sessions' ? JSON.stringify({ ...JSON.parse(body), serverPublicKey: ownPoint }) : body
    })
    await t.rejects(openSession({ baseUrl, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin }), { name: 'EnclaveSessionError', code: 'BAD_SIGNATURE' })
    t.notOk(relay.exchanges.some((e) => e.path.endsWith('/execute')), 'no code was sent')
  })

  t.test('a relay that swaps the client\'s key for its own towards the service: the client refuses', async (t) => {
    const tenant = await createTenant(app, 'sess-mitm2')
    const own = createECDH('prime256v1')
    const ownPoint = own.generateKeys('base64url', 'uncompressed')
    const { relay, baseUrl } = await relayFor({
      request: (path: string, body: string) => path === '/api/sessions' ? JSON.stringify({ clientPublicKey: ownPoint }) : body
    })
    await t.rejects(openSession({ baseUrl, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin }), { name: 'EnclaveSessionError', code: 'BAD_SIGNATURE' })
    t.notOk(relay.exchanges.some((e) => e.path.endsWith('/execute')), 'no code was sent')
  })

  t.test('a relay with its own identity key, signing properly: the pin refuses it', async (t) => {
    const tenant = await createTenant(app, 'sess-mitm3')
    const fake = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const fakeJwk = { ...fake.publicKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256' }
    const own = createECDH('prime256v1')
    own.generateKeys()
    const ownPoint = own.getPublicKey(null, 'uncompressed')
    let clientPoint = ''
    const { relay, baseUrl } = await relayFor({
      request: (path: string, body: string) => {
        if (path === '/api/sessions') clientPoint = JSON.parse(body).clientPublicKey
        return body
      },
      response: (path: string, body: string) => {
        if (path === '/.well-known/enclave-session.json') return JSON.stringify({ ...JSON.parse(body), jwk: fakeJwk })
        if (path !== '/api/sessions') return body
        const opened = JSON.parse(body)
        const signature = sign('sha256', handshakeTranscript(opened.sessionId, Buffer.from(clientPoint, 'base64url'), ownPoint), { key: fake.privateKey, dsaEncoding: 'ieee-p1363' })
        return JSON.stringify({ ...opened, serverPublicKey: ownPoint.toString('base64url'), signature: signature.toString('base64url') })
      }
    })
    await t.rejects(openSession({ baseUrl, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin }), { code: 'PIN_MISMATCH' })
    t.same(relay.exchanges.map((e) => e.path), ['/.well-known/enclave-session.json'])
  })

  t.test('an altered or replayed answer is refused, and the session closes', async (t) => {
    const tenant = await createTenant(app, 'sess-answer')
    let mode: 'pass' | 'flip' | 'replay' = 'pass'
    let previous = ''
    const { baseUrl } = await relayFor({
      response: (path: string, body: string) => {
        if (!path.endsWith('/execute')) return body
        if (mode === 'replay') return previous
        previous = body
        if (mode === 'pass') return body
        const parsed = JSON.parse(body)
        const bytes = Buffer.from(parsed.frame.ciphertext, 'base64url')
        bytes[0] = (bytes[0] as number) ^ 1
        return JSON.stringify({ frame: { ...parsed.frame, ciphertext: bytes.toString('base64url') } })
      }
    })
    const token = tenant.headers.authorization.slice(7)
    const flipped = await openSession({ baseUrl, token, pinnedThumbprint: pin })
    mode = 'flip'
    await t.rejects(flipped.execute('return 1'), { code: 'BAD_RESPONSE' })
    await t.rejects(flipped.execute('return 1'), { code: 'SESSION_CLOSED' }, 'an answer went missing: the session is not used again')

    mode = 'pass'
    const replayed = await openSession({ baseUrl, token, pinnedThumbprint: pin })
    t.equal((await replayed.execute('return "first"')).value, 'first')
    mode = 'replay'
    await t.rejects(replayed.execute('return "second"'), { code: 'REPLAYED_FRAME' }, 'the first answer given again for the second request')
  })

  t.test('refusals reach the caller as errors with the service\'s fields', async (t) => {
    const tenant = await createTenant(app, 'sess-client-refuse', { tier: 'free', quotaOverrides: { maxCodeSizeKB: 1 } })
    const session = await openSession({ baseUrl: origin, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin })
    const err = await session.execute(`return "${'x'.repeat(2000)}"`).catch((e: unknown) => e) as EnclaveSessionError
    t.ok(err instanceof EnclaveSessionError)
    t.equal(err.code, 'CODE_TOO_LARGE')
    t.equal(err.status, 413)
    t.same(err.body, { error: 'Code size limit exceeded (1 KB)', code: 'CODE_TOO_LARGE', limit: 1 })
    t.equal((await session.execute('return 3')).value, 3, 'an encrypted refusal leaves the session usable')
    // Concurrent calls on one session are queued, so answers come back in counter order.
    const values = await Promise.all([1, 2, 3, 4].map(async (n) => (await session.execute(`return ${n}`)).value))
    t.same(values, [1, 2, 3, 4])
  })

  t.test('stream(): the events of the plain stream, decrypted, and nothing readable on the way', async (t) => {
    const tenant = await createTenant(app, 'sess-client-stream', { permissions: ['tool:data:insert'] })
    const code = `
      console.log(['LOG', 'SECRET', '5d0e'].join('-'))
      const doc = await callTool('data:insert', { document: { note: ['ARGS', 'SECRET', '91c2'].join('-') } })
      return { result: ['RESULT', 'SECRET', 'b84f'].join('-'), note: doc.note }`
    const clear = await fetch(`${origin}/api/execute`, { method: 'POST', headers: { ...tenant.headers, 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify({ code }) })
    const expected = (await clear.text()).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as StreamEvent)

    const { relay, baseUrl } = await relayFor()
    const session = await openSession({ baseUrl, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin })
    const events = []
    for await (const event of session.stream(code)) events.push(event)
    const shape = (e: StreamEvent) => ({ seq: e.seq, type: e.type, data: e.type === 'tool_result' ? { ...e.data, durationMs: 0 } : e.type === 'final' ? null : e.data })
    t.same(events.map(shape), expected.map(shape), 'the same seq, types and data as in the clear')
    const final = events.at(-1)?.data as { result: { value: unknown, logs: unknown } }
    t.same(final.result.value, { result: 'RESULT-SECRET-b84f', note: 'ARGS-SECRET-91c2' })
    t.same(final.result.logs, [{ level: 'log', message: 'LOG-SECRET-5d0e' }])
    for (const secret of ['ARGS-SECRET', 'LOG-SECRET', 'RESULT-SECRET', 'callTool', 'data:insert', 'tool_call', 'final']) {
      t.notOk(relay.seen.includes(secret), `the relay never saw ${secret}`)
    }
    t.equal((await session.execute('return 2')).value, 2, 'the session goes on after a stream')
    const again = []
    for await (const event of session.stream('return 3', { timeoutMs: 1000 })) again.push(event.type)
    t.same(again, ['started', 'final'])
  })

  t.test('stream(): a tampered, dropped, replayed or missing frame is refused and the session closes', async (t) => {
    const tenant = await createTenant(app, 'sess-client-stream-mitm')
    let rewrite: (lines: string[]) => string[] = (lines) => lines
    let previous: string[] = []
    const { baseUrl } = await relayFor({
      response: (path: string, body: string) => {
        if (!path.endsWith('/execute') || !body.includes('\n')) return body
        const lines = body.split('\n').filter((l) => l !== '')
        const out = rewrite(lines)
        previous = lines
        return out.join('\n') + '\n'
      }
    })
    const token = tenant.headers.authorization.slice(7)
    const code = 'console.log(1); console.log(2); return 3'
    const flip = (line: string): string => {
      const { frame } = JSON.parse(line)
      const bytes = Buffer.from(frame.ciphertext, 'base64url')
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1
      return JSON.stringify({ frame: { ...frame, ciphertext: bytes.toString('base64url') } })
    }
    for (const [label, change, code_] of [
      ['one bit of one frame flipped', (lines: string[]) => lines.map((l, i) => i === 1 ? flip(l) : l), 'BAD_RESPONSE'],
      ['one frame dropped', (lines: string[]) => lines.filter((_l, i) => i !== 1), 'BAD_RESPONSE'],
      ['two frames swapped (the later one first: an event missing)', (lines: string[]) => [lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)], 'BAD_RESPONSE'],
      ['a frame repeated', (lines: string[]) => [lines[0]!, lines[1]!, lines[1]!, ...lines.slice(2)], 'REPLAYED_FRAME'],
      ['the final frame cut off', (lines: string[]) => lines.slice(0, -1), 'STREAM_ENDED'],
      ['the previous stream replayed', () => previous, 'REPLAYED_FRAME']
    ] as const) {
      rewrite = (lines) => lines
      const session = await openSession({ baseUrl, token, pinnedThumbprint: pin })
      for await (const event of session.stream(code)) t.ok(event)
      rewrite = change
      const seen: string[] = []
      await t.rejects((async () => { for await (const event of session.stream(code)) seen.push(event.type) })(), { name: 'EnclaveSessionError', code: code_ }, label)
      t.notOk(seen.includes('final'), `${label}: no result taken`)
      rewrite = (lines) => lines
      await t.rejects(session.execute('return 1'), { code: 'SESSION_CLOSED' }, `${label}: the session is closed`)
    }
  })

  t.test('stream(): a refusal before the run throws with the service\'s fields; the session stays usable', async (t) => {
    const tenant = await createTenant(app, 'sess-client-stream-refuse', { tier: 'free', quotaOverrides: { maxCodeSizeKB: 1 } })
    const session = await openSession({ baseUrl: origin, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin })
    const err = await session.stream(`return "${'x'.repeat(2000)}"`).next().catch((e: unknown) => e) as EnclaveSessionError
    t.ok(err instanceof EnclaveSessionError)
    t.equal(err.code, 'CODE_TOO_LARGE')
    t.equal(err.status, 413)
    t.same(err.body, { error: 'Code size limit exceeded (1 KB)', code: 'CODE_TOO_LARGE', limit: 1 })
    t.equal((await session.execute('return 3')).value, 3)
  })

  t.test('stream(): leaving before final cancels the run (its slot is free) and closes the session', async (t) => {
    const tenant = await createTenant(app, 'sess-client-stream-leave', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 1000, maxExecutionDurationMs: 20_000 } })
    const session = await openSession({ baseUrl: origin, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin })
    const events = session.stream('while (true) {}')
    t.equal((await events.next()).value?.type, 'started')
    await events.return()
    await waitFor(async () => {
      await app.audit.flush()
      const audit = (await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })).json() as { entries: Array<{ errorCode: string | null }> }
      return audit.entries.some((e) => e.errorCode === 'CANCELLED')
    }, { message: 'the run audited as cancelled' })
    // free tier: one slot. It is released once the runner reports the run's CPU free (just after
    // its audit row), well before the run's own 20 s limit.
    const next = await waitFor(async () => {
      const res = await tenant.execute('return "next"')
      return res.statusCode === 200 ? res : undefined
    }, { message: 'a run admitted in the freed slot' })
    t.equal(next?.json().value, 'next')
    await t.rejects(session.execute('return 1'), { code: 'SESSION_CLOSED' })

    const aborted = await openSession({ baseUrl: origin, token: tenant.headers.authorization.slice(7), pinnedThumbprint: pin })
    const controller = new AbortController()
    await t.rejects((async () => {
      for await (const event of aborted.stream('while (true) {}', { signal: controller.signal })) if (event.type === 'started') controller.abort()
    })())
    await t.rejects(aborted.execute('return 1'), { code: 'SESSION_CLOSED' })
  })

  t.test('a bad token is refused in the clear', async (t) => {
    await t.rejects(openSession({ baseUrl: origin, token: 'nope', pinnedThumbprint: pin }), { code: 'INVALID_TOKEN', status: 401 })
  })
})
