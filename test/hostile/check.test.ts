// Hostile round 3: POST /api/execute/check runs nothing and consumes no quota, but parsing a large
// script is service CPU. A tenant's checks are bounded by its tier: checks in flight, the size of
// a TypeScript check, and the parse's time on a worker thread. Each failed before its fix.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { ScriptPool, ScriptTimeoutError } from '../../services/code-mode/script-pool.ts'
import { CheckSlots, checkLimitsOf, estimatedCheckMs } from '../../services/code-mode/check-limits.ts'
import { ServiceError } from '../../services/errors/index.ts'
import { quotasFor } from '../../services/tenants/tiers.ts'

// About `kb` KB of JavaScript (also valid TypeScript), each line a typed-looking call.
const bigScript = (kb: number, typed = false): string => {
  const line = typed ? 'const v$: number = Math.max(1, 2) + $ as number\n' : 'const v$ = Math.max(1, 2) + $\n'
  const lines: string[] = []
  for (let i = 0, size = 0; size < kb * 1024; i++) { const l = line.replaceAll('$', String(i)); lines.push(l); size += l.length }
  return lines.join('') + 'return 1'
}

t.test('hostile checks', async (t) => {
  const app = await buildApp(t)

  t.test('free tier: one check in flight at a time (one more may wait for it); the rest are 429 CHECK_LIMIT_EXCEEDED, and the tenant is free again after', async (t) => {
    const tenant = await createTenant(app, 'check-flood', { tier: 'free' })
    const code = bigScript(40)
    const answers = await Promise.all(Array.from({ length: 4 }, async () => await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code } })))
    const codes = answers.map((a) => a.statusCode).sort()
    t.equal(codes[0], 200, 'one went through')
    t.ok(codes.filter((c) => c === 429).length >= 1, `the others wait their turn (${codes.join(', ')})`)
    const refused = answers.find((a) => a.statusCode === 429)
    t.match(refused?.json(), { code: 'CHECK_LIMIT_EXCEEDED', limit: 1 })
    const bystander = await createTenant(app, 'check-bystander', { tier: 'free' })
    t.equal((await app.inject({ method: 'POST', url: '/api/execute/check', headers: bystander.headers, payload: { code } })).statusCode, 200, 'another tenant is not held back')
    t.equal((await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code } })).statusCode, 200, 'freed once done')
  })

  t.test('a TypeScript check over the tier\'s check size is 413 CHECK_TOO_LARGE, before any parse', async (t) => {
    const tenant = await createTenant(app, 'check-ts', { tier: 'free' })
    const res = await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code: bigScript(30, true), language: 'typescript' } })
    t.equal(res.statusCode, 413)
    t.match(res.json(), { code: 'CHECK_TOO_LARGE', limit: 25 })
    const small = await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code: bigScript(20, true), language: 'typescript' } })
    t.equal(small.statusCode, 200)
    t.equal(small.json().ok, true)
    // JavaScript is bounded by maxCodeSizeKB alone, as a run is.
    t.equal((await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code: bigScript(30) } })).statusCode, 200)
  })

  t.test('a check on a worker thread past its time bound is stopped with its thread', async (t) => {
    const pool = new ScriptPool({ inlineBelowBytes: 0, maxThreads: 1 })
    t.teardown(async () => { await pool.close() })
    const code = bigScript(400, true)
    await t.rejects(pool.run({ kind: 'analyze', code, language: 'typescript', strict: true }, { timeoutMs: 5 }), ScriptTimeoutError)
    const done = await pool.run({ kind: 'analyze', code: 'return 1', language: 'javascript', strict: true }, { timeoutMs: 5000 })
    t.ok(done.analysis !== undefined, 'the pool works on')
  })

  t.test('a tenant\'s checks get their tier\'s share of CPU over time: past it, 429 CHECK_TIME_EXCEEDED with Retry-After until paid off', async (t) => {
    let now = 0
    const slots = new CheckSlots(() => now)
    const limits = checkLimitsOf(quotasFor('free'))
    t.equal(limits.msPerSecond, 50)
    const check = { code: 'return 1' }
    // Back to back, 300 ms of parse each: the burst (a second's worth) goes, then the tenant waits.
    for (let i = 0; i < 4; i++) (await slots.admit('flooder', limits, check))(300)
    const refused = await slots.admit('flooder', limits, check).then(() => undefined, (err: unknown) => err)
    t.ok(refused instanceof ServiceError)
    t.match((refused as ServiceError).body(), { code: 'CHECK_TIME_EXCEEDED', limit: 50 })
    t.equal((refused as ServiceError).statusCode, 429)
    t.equal((refused as ServiceError).retryAfterSeconds, 4, '200 ms over the burst at 50 ms a second')
    t.equal(await slots.admit('bystander', limits, check).then((release) => { release(); return 'admitted' }), 'admitted', 'another tenant is not held back')
    now += 4000
    t.equal(await slots.admit('flooder', limits, check).then((release) => { release(10); return 'admitted' }), 'admitted', 'paid off, it checks again')
  })

  t.test('checks in flight are admitted by what they are expected to cost, not only by what was spent', async (t) => {
    let now = 0
    const slots = new CheckSlots(() => now)
    const limits = checkLimitsOf(quotasFor('enterprise'))
    t.same([limits.concurrent, limits.msPerSecond], [4, 200])
    const large = { code: 'x'.repeat(240 * 1024), language: 'typescript' as const }
    t.equal(estimatedCheckMs(240 * 1024, 'typescript'), 240, 'a 240 KB TypeScript check is expected to take 240 ms')
    t.equal(estimatedCheckMs(240 * 1024, undefined), 60, 'JavaScript (and a body not yet read) a quarter of that')
    t.equal(estimatedCheckMs(10 * 1024 * 1024, 'typescript'), 1000, 'never more than the burst')
    const refusal = async (tenantId: string, request: { code: string, language?: 'typescript' }): Promise<unknown> => await slots.admit(tenantId, limits, request).then(() => undefined, (err: unknown) => err)
    // A tenant that owes 500 ms: two large checks fit what is left of its burst (500 + 2 × 240),
    // a third does not, though the tier allows four in flight.
    ;(await slots.admit('flooder', limits, { code: 'return 1' }))(500)
    const first = await slots.admit('flooder', limits, large)
    await slots.admit('flooder', limits, large)
    const third = await refusal('flooder', large) as ServiceError
    t.match(third.body(), { code: 'CHECK_TIME_EXCEEDED', limit: 200 }, 'refused while two are in flight')
    t.equal(third.statusCode, 429)
    t.equal(third.retryAfterSeconds, 2, '220 ms over the burst at 200 ms a second')
    t.equal(await refusal('flooder', { code: 'return 1' }), undefined, 'a small check still fits (500 + 480 + 0 ms)')
    const fourth = await slots.admit('flooder', limits, { code: 'return 1' })
    // The first ends having taken 100 ms: the difference is refunded, and the next fits again.
    first(100)
    t.throws(() => { slots.refuseOverTime('flooder', limits, estimatedCheckMs(240 * 1024, 'typescript')) }, { code: 'CHECK_TIME_EXCEEDED' }, '600 owed + 240 in flight + 240 = 1080')
    t.doesNotThrow(() => { slots.refuseOverTime('flooder', limits, estimatedCheckMs(240 * 1024, undefined)) }, 'before its body is read it is judged by its length as JavaScript: 600 + 240 + 60')
    fourth(0)
    now += 500
    t.equal(await refusal('flooder', large), undefined, 'half a second later: 500 owed + 240 in flight + 240')
    // A fresh tenant may still use its whole burst at once: four 240 ms checks.
    for (let i = 0; i < 4; i++) await slots.admit('fresh', limits, large)
    t.pass('four large checks of a fresh tenant fit its burst')
  })

  t.test('past its tier\'s checks in flight a check waits for one of them to end; past as many waiting, 429 CHECK_LIMIT_EXCEEDED at once', async (t) => {
    // Refused at once, a flooder retrying at once made a loop of refusals whose HTTP handling took
    // more of the event loop than the checks did: now its extra connections wait instead.
    const slots = new CheckSlots()
    const limits = checkLimitsOf(quotasFor('free'))
    t.same([limits.concurrent, limits.timeoutMs], [1, 1000])
    const check = { code: 'return 1' }
    const running = await slots.admit('flooder', limits, check)
    let admitted = false
    const waiting = slots.admit('flooder', limits, check).then((release) => { admitted = true; return release })
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(admitted, false, 'the second waits while the first is in flight')
    const refused = await slots.admit('flooder', limits, check).then(() => undefined, (err: unknown) => err) as ServiceError
    t.ok(refused instanceof ServiceError, 'a third is refused at once')
    t.equal(refused.statusCode, 429)
    t.same(refused.body(), { error: 'Too many checks at once: at most 1 per tenant', code: 'CHECK_LIMIT_EXCEEDED', limit: 1 })
    t.equal(await slots.admit('bystander', limits, check).then((release) => { release(1); return 'admitted' }), 'admitted', 'another tenant\'s check is not held back')
    running(1)
    const release = await waiting
    t.equal(admitted, true, 'the waiting check is handed the slot of the one that ended')
    // Not handed a slot within its tier's check time bound, a waiting check is refused too.
    const late = await slots.admit('flooder', limits, check).then(() => undefined, (err: unknown) => err) as ServiceError
    t.match(late?.body(), { code: 'CHECK_LIMIT_EXCEEDED', limit: 1 }, 'refused after waiting its time bound')
    release(1)
    t.equal(await slots.admit('flooder', limits, check).then((r) => { r(1); return 'admitted' }), 'admitted', 'free again once its checks ended')
  })

  t.test('all tenants of a tier together: past their checks in flight on the instance, 429 CHECK_TIER_BUSY with Retry-After; a paid tenant\'s check is still admitted', async (t) => {
    // One check thread serves every tenant: free tenants, one check each, would otherwise queue
    // every paid tenant's check behind theirs.
    const slots = new CheckSlots()
    const free = checkLimitsOf(quotasFor('free'), 'free')
    t.same(free.tier, { name: 'free', concurrent: 2 })
    const check = { code: 'return 1' }
    const first = await slots.admit('free-a', free, check)
    const second = await slots.admit('free-b', free, check)
    const busy = await slots.admit('free-c', free, check).then(() => undefined, (err: unknown) => err) as ServiceError
    t.ok(busy instanceof ServiceError, 'a third free tenant is refused')
    t.equal(busy.statusCode, 429)
    t.equal(busy.retryAfterSeconds, 1)
    t.same(busy.body(), { error: 'Checks of the free tier are at their share of this instance (2 at once, all tenants of the tier together): retry after Retry-After seconds', code: 'CHECK_TIER_BUSY', limit: 2 })
    t.throws(() => { slots.refuseOverTime('free-c', free) }, { code: 'CHECK_TIER_BUSY' }, 'refused before its body is read too')
    const enterprise = checkLimitsOf(quotasFor('enterprise'), 'enterprise')
    t.equal(await slots.admit('paid', enterprise, check).then((release) => { release(1); return 'admitted' }), 'admitted', 'a paid tenant\'s check is not held back')
    // A free tenant with its own check in flight waits for it, as before: handed its slot, the
    // tier's count does not change.
    const waiting = slots.admit('free-a', free, check)
    first(1)
    const handed = await waiting
    t.match(await slots.admit('free-c', free, check).then(() => undefined, (err: unknown) => err), { code: 'CHECK_TIER_BUSY' }, 'still two in flight')
    second(1)
    t.equal(await slots.admit('free-c', free, check).then((release) => { release(1); return 'admitted' }), 'admitted', 'admitted once one of them ended')
    handed(1)
  })

  t.test('checks count against the tenant\'s request rate', async (t) => {
    const limited = await buildApp(t, { RATE_LIMIT_PER_MINUTE: '3' })
    // No admin request on this app: on a shared Redis the admin's own per-minute counter is every
    // test file's, and 3 a minute would be gone. Sequential checks fit the free tier's one at a time.
    const tenant = await createTenant(limited, 'check-rate')
    const codes: number[] = []
    for (let i = 0; i < 4; i++) codes.push((await limited.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code: 'return 1' } })).statusCode)
    t.same(codes, [200, 200, 200, 429])
  })
})
