// Hostile round 3: an encrypted event stream outlived its session (heartbeats and events sealed
// on counters reserved before the expiry), then stopped without `final`. A session's streams now
// end at its expiry with a sealed `final` whose error is SESSION_ENDED. Failed before its fix.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { rawSession } from '../sessions/fixtures.ts'

t.test('an expired session ends its streams with a sealed final at the expiry', async (t) => {
  const app = await buildApp(t, { SESSION_TTL_SECONDS: '2' })
  await app.enclave.ready()
  const tenant = await createTenant(app, 'sess-outlive', { tier: 'starter' })
  const session = await rawSession(app, tenant.headers)
  const expiresAt = Number.parseInt(session.sessionId.split('.')[0] as string, 36)
  // Logs every few ms (many frames: more than the first block of counters) and never ends by itself.
  const code = 'let i = 0\nwhile (true) { if (i++ % 2000000 === 0) console.log("tick", i) }'
  const res = await app.inject({
    method: 'POST',
    url: `/api/sessions/${session.sessionId}/execute`,
    headers: { ...tenant.headers, accept: 'application/x-ndjson' },
    payload: { frame: session.frame(0, { code, timeoutMs: 15_000 }) }
  })
  const endedAt = Date.now()
  t.equal(res.statusCode, 200)
  const frames = res.body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).frame as { counter: number })
  const counters = frames.map((f) => f.counter)
  t.ok(counters.every((c, i) => i === 0 || c > (counters[i - 1] as number)), 'counters strictly increase')
  const events = frames.map((f) => session.open(f as never))
  const last = events.at(-1)
  t.equal(last?.type, 'final', 'the stream ends with final')
  t.match(last?.data, { result: { success: false, error: { code: 'SESSION_ENDED', name: 'SessionExpiredError' } } })
  t.ok(endedAt - expiresAt < 2000, `at the expiry (${endedAt - expiresAt} ms after it)`)
  t.equal(events.filter((e) => e.type === 'final').length, 1, 'one final')
  // The run was stopped with its stream: the tenant's slot is free again.
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().concurrentExecutions, 0)
})
