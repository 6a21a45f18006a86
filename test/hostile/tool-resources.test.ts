import t from 'tap'
import pg from 'pg'
import { DummyDriver, Kysely, sql, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely'
import { Type } from 'typebox'
import { buildApp, createTenant } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { applicationName } from '../../services/db/tenant-settings.ts'
import { createToolGateway } from '../../services/executions/tool-gateway.ts'
import { ToolRegistry } from '../../services/tools/tool-registry.ts'
import { createMemoryStore } from '../../services/store/index.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'
import { KeyedSemaphore } from '../../services/fifo-semaphore.ts'
import type { Database } from '../../services/db/schema.ts'

// Issue 10, finding 4: one tenant's big tool results, parallel calls and parallel transactions
// must not take memory or database capacity from the others.

const MB = 1024 * 1024
const BUDGET = 2 * MB
const DOCUMENTS = 60
const TENANT_CAP = 2
const LIMIT_MESSAGE = `Result of data:query exceeds the tool result limit of ${BUDGET} bytes (TOOL_RESULT_MAX_BYTES); ask for fewer or smaller documents`

/**
 * Samples `read` every 2 ms until `work` settles; returns the largest value. A timer, not
 * setImmediate: a sampler spinning on every turn makes enough garbage to grow the heap itself.
 */
async function peakWhile<T> (read: () => Promise<number> | number, work: Promise<T>): Promise<{ peak: number, result: T }> {
  let done = false
  let peak = 0
  const sampling = (async () => {
    // eslint-disable-next-line no-unmodified-loop-condition -- `done` is set once the work settles
    while (!done) {
      peak = Math.max(peak, await read())
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  })()
  try {
    const result = await work
    return { peak, result }
  } finally {
    done = true
    await sampling
  }
}

t.test('tool resources', async (t) => {
  const app = await buildApp(t, {
    TOOL_RESULT_MAX_BYTES: String(BUDGET),
    TOOL_MAX_CONCURRENT_PER_RUN: '4',
    DATABASE_POOL_SIZE: '6',
    DATABASE_TENANT_MAX_CONNECTIONS: String(TENANT_CAP)
  })
  const hostile = await createTenant(app, 'hostile', { tier: 'enterprise' })
  const bystander = await createTenant(app, 'bystander')

  // 60 documents of ~1 MB, made by PostgreSQL itself: the probe is about reading them, and
  // seeding through this process would leave garbage that muddies its RSS.
  await withTenant(app.db, hostile.tenantId, async (trx) => {
    await sql`insert into documents (tenant_id, collection, body, created_by)
      select ${hostile.tenantId}, 'big', jsonb_build_object('i', g, 'big', repeat('x', ${MB})), 'seed'
      from generate_series(0, ${DOCUMENTS - 1}) as g`.execute(trx)
  })
  await hostile.execute("await callTool('data:insert', { collection: 'small', document: { n: 1 } })")

  const bystanderRun = async () => {
    const started = performance.now()
    const res = await bystander.execute(`
      await callTool('data:insert', { document: { n: 1 } })
      return (await callTool('data:query', {})).length > 0`)
    return { res, ms: performance.now() - started }
  }
  // The bystander's first run creates its isolate and caches: warm it, the probe measures load.
  t.same((await bystanderRun()).res.json().value, true)

  t.test('a result over the byte budget is a catchable TOOL_ERROR naming the limit, read by nobody', async (t) => {
    // Warm the paths once so the RSS baseline is not the first JIT and allocation.
    const warm = await hostile.execute("return (await callTool('data:query', { collection: 'small' })).length")
    t.same(warm.json().value, 1)
    const before = process.memoryUsage.rss()

    const probe = hostile.execute(`
      const calls = Array.from({ length: 8 }, () => callTool('data:query', { collection: 'big', limit: 200 })
        .then((docs) => 'read ' + docs.length, (e) => e.code + ': ' + e.message))
      return await Promise.all(calls)`)
    const bystanders = (async () => {
      const runs = []
      for (let i = 0; i < 3; i++) runs.push(await bystanderRun())
      return runs
    })()
    const { peak, result: [res, runs] } = await peakWhile(() => process.memoryUsage.rss(), Promise.all([probe, bystanders]))

    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.success, true, 'the script caught every failure')
    t.same(body.value, Array.from({ length: 8 }, () => `TOOL_ERROR: ${LIMIT_MESSAGE}`))
    // Before the fix, 8 × 60 MB of rows were read: hundreds of MB. Now only sizes are read.
    t.ok(peak - before < 8 * BUDGET, `RSS grew by ${((peak - before) / MB).toFixed(1)} MB (< ${8 * BUDGET / MB} MB)`)
    for (const run of runs) {
      t.equal(run.res.statusCode, 200, 'the bystander is never refused (no 503)')
      t.same(run.res.json().value, true)
      t.ok(run.ms < 2000, `the bystander's tool run took ${run.ms.toFixed(0)} ms (< 2000)`)
    }
  })

  t.test('a result under the budget is read whole', async (t) => {
    const res = await hostile.execute("return (await callTool('data:query', { collection: 'big', limit: 1 })).map((d) => [typeof d.i, d.big.length])")
    t.same(res.json().value, [['number', MB]])
  })

  t.test('a tenant never holds more than its cap of database connections', async (t) => {
    // Three runs of eight parallel calls: up to 12 transactions at once without a cap.
    // 20 MB measured per call: over the budget, and long enough for the observer to see it.
    const script = `
      const calls = Array.from({ length: 8 }, () => callTool('data:query', { collection: 'big', limit: 20 }).catch((e) => e.code))
      return await Promise.all(calls)`
    // What withTenant is granted, counted by the test at the moment of each grant and release
    // (PGlite answers within microtasks, so a sampler could miss a short transaction).
    const semaphore = app.db.tenantConnections
    const acquire = semaphore.acquire.bind(semaphore)
    let held = 0
    let peakGranted = 0
    semaphore.acquire = async (key) => {
      const release = await acquire(key)
      if (key !== hostile.tenantId) return release
      peakGranted = Math.max(peakGranted, ++held)
      let released = false
      return () => { if (!released) { released = true; held-- } release() }
    }
    t.teardown(() => { semaphore.acquire = acquire })

    let observer: pg.Client | undefined
    let sample: () => Promise<number> = async () => 0
    if (process.env.DATABASE_URL !== undefined) {
      // On a real server, the connections themselves: withTenant names the tenant in application_name.
      observer = new pg.Client({ connectionString: process.env.DATABASE_URL })
      await observer.connect()
      const client = observer
      sample = async () => Number((await client.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [applicationName(hostile.tenantId)])).rows[0].n)
    }
    try {
      const attack = Promise.all([hostile.execute(script), hostile.execute(script), hostile.execute(script)])
      const [{ peak, result }, bystanderResult] = await Promise.all([peakWhile(sample, attack), bystanderRun()])
      for (const res of result) t.same(res.json().value, Array.from({ length: 8 }, () => 'TOOL_ERROR'))
      t.ok(peakGranted >= 1 && peakGranted <= TENANT_CAP, `at most ${TENANT_CAP} transactions of the tenant at once (saw ${peakGranted})`)
      if (observer !== undefined) {
        // Twelve calls in flight against a pool of 6: without the cap the tenant would hold all 6.
        t.equal(peak, TENANT_CAP, `PostgreSQL saw the tenant on ${TENANT_CAP} connections at most, and reaching it`)
      }
      t.equal(bystanderResult.res.statusCode, 200, 'another tenant\'s transactions do not wait behind the cap')
      t.same(bystanderResult.res.json().value, true)
    } finally {
      await observer?.end()
    }
    // The runs' audit rows (executions and tool calls) are written in the tenant's transactions
    // too, queued after the responses: they count against the same cap and must give it back.
    await app.audit.flush()
    t.equal(held, 0, 'every transaction gave its slot back')
    t.equal(app.db.tenantConnections.inUse(hostile.tenantId), 0, 'every slot is given back')
  })
})

t.test('one run has at most TOOL_MAX_CONCURRENT_PER_RUN calls in progress; the rest wait in order', async (t) => {
  // A database that answers nothing and serialises nothing (PGlite is one session, which would
  // hide the gateway's own bound): only the gateway limits how many calls run at once.
  const kysely = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler()
    }
  })
  const db = { kysely, appRole: 'enclave_app', tenantConnections: new KeyedSemaphore(100), simpleQuery: async () => [] }
  let inProgress = 0
  let peak = 0
  const started: number[] = []
  const gates: Array<() => void> = []
  const slow = {
    name: 'test:slow',
    description: 'waits until the test opens its gate',
    argsSchema: Type.Object({ n: Type.Integer() }),
    run: async (_trx: unknown, _caller: unknown, args: unknown) => {
      inProgress++
      peak = Math.max(peak, inProgress)
      started.push((args as { n: number }).n)
      await new Promise<void>((resolve) => gates.push(resolve))
      inProgress--
      return (args as { n: number }).n
    }
  }
  const tools = new ToolRegistry(db, [slow], { cacheTtlMs: 0, limits: { maxResultBytes: MB, maxConcurrentPerRun: 3 } })
  const caller = { tenantId: 'gateway-probe', userId: 'u', permissions: ['tool:test:slow'], quotas: TIER_QUOTAS.enterprise }
  const callTool = createToolGateway({ db, store: createMemoryStore(), tools }, caller)

  const calls = Array.from({ length: 8 }, async (_, n) => await callTool('test:slow', { n }))
  // Open the gates one by one as calls arrive: each release lets exactly the next waiter in.
  while (started.length < 8 || gates.length > 0) {
    await new Promise((resolve) => setImmediate(resolve))
    gates.shift()?.()
  }
  t.same(await Promise.all(calls), [0, 1, 2, 3, 4, 5, 6, 7])
  t.equal(peak, 3, 'never more than 3 calls of one run in progress')
  t.same(started, [0, 1, 2, 3, 4, 5, 6, 7], 'waiting calls start in the order they were made')

  // Another run has its own places: a full run does not hold it up.
  const other = createToolGateway({ db, store: createMemoryStore(), tools }, caller)
  const blocked = Array.from({ length: 3 }, async (_, n) => await callTool('test:slow', { n }))
  const free = other('test:slow', { n: 99 })
  while (started.length < 12) await new Promise((resolve) => setImmediate(resolve))
  t.same(started.slice(8).sort((a, b) => a - b), [0, 1, 2, 99])
  for (const open of gates.splice(0)) open()
  t.same(await Promise.all([...blocked, free]), [0, 1, 2, 99])
})
