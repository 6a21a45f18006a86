import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { KeyedSemaphore } from '../../services/fifo-semaphore.ts'
import { acquireConnectionShare, DatabaseBusyError, StatementTooLongError, tierBounded, tierConnections, tierStatementFailure, tierStatementLimits } from '../../services/db/connection-shares.ts'
import { RunEndedError, type RunBounds } from '../../services/db/run-bounds.ts'
import { tenantConnectionCap } from '../../services/db/with-tenant.ts'
import type { Tier } from '../../services/tenants/tiers.ts'

// Issue 28, item 1: with a per-tenant cap of a third of the pool, four free tenants held 12
// connections of 10 and an enterprise tenant's one-row query waited seconds or failed. The
// tiers' shares bound what all free (starter) tenants hold together.

const POOL = 10
const run = (tier: Tier, ms = 10_000, ended?: AbortSignal): RunBounds => ({ deadline: Date.now() + ms, ceilingMs: ms, tier, ...(ended !== undefined ? { ended } : {}) })
const settled = async (p: Promise<unknown>): Promise<boolean> => await Promise.race([p.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 50))])

t.test('four free tenants hold at most the free share; a paid tenant still finds a connection', async (t) => {
  const tenants = new KeyedSemaphore(tenantConnectionCap(POOL, 0))
  const tiers = tierConnections({ poolSize: POOL, freePercent: 30, starterPercent: 60, cpuCores: 8 })
  const held: Array<() => void> = []
  const waiting: Array<Promise<() => void>> = []
  for (const tenant of ['f1', 'f2', 'f3', 'f4']) {
    for (let i = 0; i < tenants.limit; i++) {
      const p = acquireConnectionShare(tenants, tiers, tenant, run('free'))
      if (await settled(p)) held.push(await p); else waiting.push(p)
    }
  }
  t.equal(held.length, 3, 'all free tenants together hold 30 % of the pool')
  t.equal(waiting.length, 4 * tenants.limit - 3, 'the rest of their calls wait')
  const starter = await acquireConnectionShare(tenants, tiers, 's1', run('starter'))
  const enterprise = await acquireConnectionShare(tenants, tiers, 'e1', run('enterprise'))
  t.pass('a starter and an enterprise tenant get a connection at once')
  starter(); enterprise()
  for (const release of held) release()
  for (const p of waiting) (await p)()
  t.equal(tenants.inUse('f1'), 0, 'no place is left behind')
})

t.test('a wait is bounded by the run: a catchable busy error, or the run\'s end', async (t) => {
  const tenants = new KeyedSemaphore(3)
  const tiers = tierConnections({ poolSize: POOL, freePercent: 10, starterPercent: 60, cpuCores: 2 })
  const hog = await acquireConnectionShare(tenants, tiers, 'hog', run('free'))
  const started = Date.now()
  await t.rejects(acquireConnectionShare(tenants, tiers, 'other', run('free', 400)), DatabaseBusyError, 'a free call waits at most half its run\'s remaining time')
  t.ok(Date.now() - started < 400, 'and is told before its run ends')
  await t.rejects(acquireConnectionShare(tenants, tiers, 'other', run('free', 400)), { message: /The database is busy for the free tier.*retry later/ })

  const controller = new AbortController()
  const ending = acquireConnectionShare(tenants, tiers, 'other', run('free', 10_000, controller.signal))
  controller.abort()
  await t.rejects(ending, RunEndedError, 'a run that ends gives up its wait at once')
  hog()
  const next = await acquireConnectionShare(tenants, tiers, 'next', run('free'))
  t.pass('the ended wait left no place taken')
  next()
  t.equal(tenants.inUse('other'), 0)
})

const queryOrError = "try { await callTool('data:query', {}); return 'answered' } catch (e) { return e.code + ': ' + e.message }"

/** With the free tier's one connection held (as another free tenant's scan would hold it), a free tenant's call and an enterprise tenant's. */
async function callsBesideAHeldFreeShare (t: Parameters<typeof buildApp>[0], settings: Record<string, string>, prefix: string): Promise<{ free: string, enterprise: string }> {
  const app = await buildApp(t, settings)
  const free = await createTenant(app, `${prefix}-free`, { tier: 'free' })
  const enterprise = await createTenant(app, `${prefix}-enterprise`, { tier: 'enterprise' })
  const hold = await app.db.tierConnections!.free!.acquire()
  t.teardown(hold)
  return {
    free: (await free.execute(queryOrError, { timeoutMs: 1000 })).json().value,
    enterprise: (await enterprise.execute(queryOrError, { timeoutMs: 1000 })).json().value
  }
}

t.test('a run\'s call that finds its tier\'s share taken gets a catchable TOOL_ERROR in time', async (t) => {
  const values = await callsBesideAHeldFreeShare(t, { DATABASE_POOL_SIZE: '10', DATABASE_FREE_SHARE_PERCENT: '10' }, 'busy')
  t.match(values.free, /^TOOL_ERROR: The database is busy for the free tier: .*retry later$/, 'the script is told, and can still act on it')
  t.equal(values.enterprise, 'answered', 'an enterprise tenant is not held back')
})

// Three free connections' CPU-bound scans were more than the database's two cores: the bystander's
// one-row statement then waited for CPU inside PostgreSQL. The lower tiers' statements are also
// bounded by the database's cores (DATABASE_CPU_CORES).
t.test('the lower tiers hold no more statements at once than the database has cores for them', async (t) => {
  const limits = (cpuCores: number): { free: number, starter: number } => tierStatementLimits({ poolSize: POOL, freePercent: 30, starterPercent: 60, cpuCores })
  t.same(limits(1), { free: 1, starter: 1 }, 'one core: each lower tier one statement')
  t.same(limits(2), { free: 1, starter: 1 }, 'two cores (the default): free half of them, starter all but one')
  t.same(limits(4), { free: 2, starter: 3 })
  t.same(limits(8), { free: 3, starter: 6 }, 'many cores: the pool shares bind (3 and 6 of 10)')
  const app = await buildApp(t, { DATABASE_POOL_SIZE: '10' })
  t.equal(app.db.tierConnections?.free?.limit, 1, 'by default (DATABASE_CPU_CORES=2) all free runs together hold one statement')
  t.equal(app.db.tierConnections?.starter?.limit, 1)
  t.equal(app.db.tierConnections?.enterprise, undefined, 'enterprise has no tier bound')
})

t.test('a free run\'s statement is bounded by DATABASE_FREE_STATEMENT_TIMEOUT_MS, and told why when stopped', async (t) => {
  const statementMs = { free: 2000 }
  const free = tierBounded(run('free', 5000), statementMs)
  t.equal(free.bounds.ceilingMs, 2000, 'a free statement may take 2 s of its 5 s run')
  t.equal(free.tierMs, 2000)
  const enterprise = tierBounded(run('enterprise', 60_000), statementMs)
  t.equal(enterprise.bounds.ceilingMs, 60_000, 'other tiers keep their run\'s bound')
  t.equal(enterprise.tierMs, undefined)
  const stopped = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' })
  const told = tierStatementFailure(stopped, free)
  t.type(told, StatementTooLongError)
  t.equal((told as Error).message, "A database statement ran past the free tier's 2000 ms limit and was stopped: narrow it (a filter, a smaller limit) or split the work into smaller calls")
  t.equal(tierStatementFailure(stopped, enterprise), stopped, 'a statement stopped by its run\'s own time is not blamed on the tier')
  const other = Object.assign(new Error('syntax'), { code: '42601' })
  t.equal(tierStatementFailure(other, free), other, 'other failures pass unchanged')
  const ended = tierBounded(run('free', -1), statementMs)
  t.equal(tierStatementFailure(stopped, ended), stopped, 'nor one stopped because its run is over')
})

t.test('with the default cores, a second free tenant\'s call is told the free tier is busy', async (t) => {
  const values = await callsBesideAHeldFreeShare(t, { DATABASE_POOL_SIZE: '10', DATABASE_CPU_CORES: '2' }, 'cores')
  t.match(values.free, /^TOOL_ERROR: The database is busy for the free tier: .*retry later$/)
  t.equal(values.enterprise, 'answered', 'an enterprise tenant finds a statement')
})
