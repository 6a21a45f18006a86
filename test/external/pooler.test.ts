import t from 'tap'
import pg from 'pg'
import { CompiledQuery, sql } from 'kysely'
import { buildApp, uniqueTenantId } from '../helper.ts'
import { statementAsTenant, withTenant } from '../../services/db/with-tenant.ts'
import { withAppRole } from '../../services/db/with-app-role.ts'
import { RunEndedError } from '../../services/db/run-bounds.ts'
import { startPgbouncer } from '../support/pgbouncer.ts'

// Issue 32, item 2: PostgreSQL behind PgBouncer in transaction mode, where one server connection
// serves one client's transaction, then another's. No tenant setting may outlive its
// transaction, so two tenants hammer through a pool of two server connections and every
// statement checks which tenant it runs as. This file runs in the external pass only (.taprc
// leaves test/external/ out of the embedded one): it needs a real PostgreSQL and the pgbouncer
// binary, and fails, never skips, without them.

const { DATABASE_URL, DATABASE_ADMIN_URL } = process.env
if (DATABASE_URL === undefined) throw new Error('test/external/ needs DATABASE_URL (and the pgbouncer binary): run it with npm run test:external')

const SERVER_CONNECTIONS = 2
const ROUNDS = 60

interface Seen { tenant: string | null, pid: number }

t.test('no tenant setting outlives its transaction through a transaction pooler', async (t) => {
  // PgBouncer in front of the server itself (DATABASE_ADMIN_URL is direct: migrations do not
  // go through a pooler), logging in as the app role of DATABASE_URL.
  const pooler = await startPgbouncer(DATABASE_ADMIN_URL ?? DATABASE_URL, DATABASE_URL, SERVER_CONNECTIONS)
  t.teardown(pooler.stop)
  // More client connections than server ones, and a tenant may use all of them: the pooler,
  // not the app, decides which server connection each transaction gets.
  const app = await buildApp(t, { DATABASE_URL: pooler.url, DATABASE_POOL_SIZE: '8', DATABASE_TENANT_MAX_CONNECTIONS: '8', DATABASE_FREE_SHARE_PERCENT: '100', DATABASE_STARTER_SHARE_PERCENT: '100' })
  const db = app.db
  const tenants = [uniqueTenantId('pool-a'), uniqueTenantId('pool-b')]
  for (const tenantId of tenants) {
    await withTenant(db, tenantId, async (trx) => {
      await trx.insertInto('documents').values({ tenant_id: tenantId, collection: 'pooled', body: JSON.stringify({ owner: tenantId }), created_by: 'pooler-test' }).execute()
    })
  }

  const probe = sql<Seen>`select nullif(current_setting('app.tenant_id', true), '') as tenant, pg_backend_pid() as pid`
  const wrong: string[] = []
  const pidsOf = new Map<string, Set<number>>(tenants.map((id) => [id, new Set<number>()]))
  const check = (what: string, expected: string | null, seen: Seen | undefined): void => {
    if (seen === undefined || seen.tenant !== expected) wrong.push(`${what}: expected ${String(expected)}, saw ${String(seen?.tenant)}`)
    if (seen !== undefined && expected !== null) pidsOf.get(expected)?.add(seen.pid)
  }

  const hammer = async (tenantId: string): Promise<void> => {
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all([
        // A transaction of several statements, each checked, with a parameterised read.
        withTenant(db, tenantId, async (trx) => {
          check('withTenant, first statement', tenantId, (await probe.execute(trx)).rows[0])
          const rows = await trx.selectFrom('documents').select(['tenant_id']).where('collection', '=', 'pooled').execute()
          if (rows.some((row) => row.tenant_id !== tenantId)) wrong.push(`withTenant read another tenant's rows: ${JSON.stringify(rows)}`)
          check('withTenant, last statement', tenantId, (await probe.execute(trx)).rows[0])
        }),
        // One message as the tenant (the simple protocol's implicit transaction).
        statementAsTenant(db, tenantId, probe.compile(db.kysely)).then((rows) => { check('statementAsTenant', tenantId, rows[0]) }),
        // A tenant transaction that fails half-way: rolled back, its settings gone with it.
        withTenant(db, tenantId, async (trx) => {
          check('failing withTenant', tenantId, (await probe.execute(trx)).rows[0])
          throw new Error('planned failure')
        }).catch((err: Error) => { if (err.message !== 'planned failure') wrong.push(`failing withTenant: ${err.message}`) }),
        // No tenant: a non-tenant transaction and a bare statement see none.
        withAppRole(db, async (trx) => { check('withAppRole', null, (await probe.execute(trx)).rows[0]) }),
        probe.execute(db.kysely).then((result) => { check('outside any transaction', null, result.rows[0]) })
      ])
    }
  }
  await Promise.all(tenants.map(hammer))

  t.same(wrong, [], 'every statement ran as its own tenant, and every other one as none')
  const used = new Set([...pidsOf.values()].flatMap((pids) => [...pids]))
  t.equal(used.size, SERVER_CONNECTIONS, `the pooler used its ${SERVER_CONNECTIONS} server connections`)
  for (const [tenantId, pids] of pidsOf) t.equal(pids.size, SERVER_CONNECTIONS, `${tenantId} ran on both, after the other tenant`)

  t.test('a session setting someone left on a server connection widens nothing', async (t) => {
    // Another client of the pooler with the app role's login sets app.tenant_id for the
    // session (as psql's `set` would), on every server connection the pool has.
    const others = await Promise.all(Array.from({ length: SERVER_CONNECTIONS }, async () => {
      const client = new pg.Client({ connectionString: pooler.url })
      await client.connect()
      await client.query('begin')
      await client.query("select set_config('app.tenant_id', $1, false), set_config('app.tenant_directory', 'on', false)", [tenants[0]])
      return client
    }))
    for (const client of others) { await client.query('commit'); await client.end() }
    const leaked = (await probe.execute(db.kysely)).rows[0]
    t.equal(leaked?.tenant, tenants[0], 'a session setting does outlive a transaction when set for the session')
    const seenByB = await withTenant(db, tenants[1], async (trx) => await trx.selectFrom('documents').select('tenant_id').where('collection', '=', 'pooled').execute())
    t.same(seenByB.map((row) => row.tenant_id), [tenants[1]], 'a tenant transaction sets its own tenant over it')
    const seenByAppRole = await withAppRole(db, async (trx) => (await probe.execute(trx)).rows[0])
    t.equal(seenByAppRole?.tenant, null, 'a non-tenant transaction clears it')
    // The setting that opens the tenants table across tenants (the admin list's) is closed in both.
    const directory = sql<{ on: string | null }>`select nullif(current_setting('app.tenant_directory', true), '') as on`
    t.equal((await withTenant(db, tenants[1], async (trx) => (await directory.execute(trx)).rows[0]))?.on, null, 'a tenant transaction closes the directory setting left on')
    t.equal((await withAppRole(db, async (trx) => (await directory.execute(trx)).rows[0]))?.on, null, 'so does a non-tenant one')
    // Leave the server connections as they were.
    await Promise.all(Array.from({ length: SERVER_CONNECTIONS }, async () => {
      const client = new pg.Client({ connectionString: pooler.url })
      await client.connect()
      await client.query('begin')
      await client.query("select set_config('app.tenant_id', '', false), set_config('app.tenant_directory', '', false), pg_sleep(0.05)")
      await client.query('commit')
      await client.end()
    }))
  })

  t.test('prepared statements: the driver leaves no named statement on a server connection', async (t) => {
    // pg (under Kysely) sends parameterised queries as the extended protocol's unnamed
    // statement, parsed and run in one go, which transaction pooling supports (PgBouncer 1.18
    // does not carry named statements from one server connection to another). The hammering
    // above ran thousands of them; each server connection, held at once by two transactions,
    // shows none named.
    const clients = await Promise.all(Array.from({ length: SERVER_CONNECTIONS }, async () => {
      const client = new pg.Client({ connectionString: pooler.url })
      await client.connect()
      await client.query('begin')
      return client
    }))
    const seen = await Promise.all(clients.map(async (client) =>
      (await client.query<{ pid: number, named: number }>('select pg_backend_pid() as pid, (select count(*)::int from pg_prepared_statements) as named')).rows[0]))
    for (const client of clients) { await client.query('commit'); await client.end() }
    t.equal(new Set(seen.map((row) => row?.pid)).size, SERVER_CONNECTIONS, 'one transaction on each server connection')
    t.same(seen.map((row) => row?.named), Array.from({ length: SERVER_CONNECTIONS }, () => 0), 'no named prepared statement on any')
  })

  t.test('a run that ends cancels its own statement, and only that one', async (t) => {
    const [a, b] = tenants as [string, string]
    // Watched on the server itself, as the app role (which sees its own sessions' queries):
    // the pooler's two server connections are busy with the statements being watched.
    const serverUrl = new URL(DATABASE_ADMIN_URL ?? DATABASE_URL)
    const appUrl = new URL(DATABASE_URL)
    serverUrl.username = appUrl.username
    serverUrl.password = appUrl.password
    const watcher = new pg.Client({ connectionString: serverUrl.toString() })
    await watcher.connect()
    t.teardown(async () => { await watcher.end() })
    const running = async (marker: string): Promise<void> => {
      for (;;) {
        const seen = await watcher.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1", [`%${marker}%`])
        if ((seen.rows[0]?.n ?? 0) > 0) return
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    // Tenant B keeps running short transactions meanwhile, on whichever server connection is free.
    const done = { stop: false }
    const bErrors: string[] = []
    const busyB = (async () => {
      while (!done.stop) {
        await withTenant(db, b, async (trx) => { await sql`select pg_sleep(0.01)`.execute(trx) }).catch((err: Error) => { bErrors.push(err.message) })
      }
    })()
    const boundsEndingOn = (signal: AbortSignal) => ({ deadline: Date.now() + 120_000, ceilingMs: 120_000, ended: signal })

    const endTransaction = new AbortController()
    const inTransaction = withTenant(db, a, async (trx) => { await sql`select pg_sleep(60) as in_transaction`.execute(trx) }, boundsEndingOn(endTransaction.signal))
    await running('pg_sleep(60) as in_transaction')
    endTransaction.abort()
    const transactionError = await inTransaction.then(() => undefined, (err: unknown) => err)
    t.type(transactionError, RunEndedError, 'the transaction of a run that ended fails')
    t.match(String((transactionError as Error).cause), /canceling statement due to user request/, 'cancelled on its backend, not by its statement_timeout')

    const endMessage = new AbortController()
    const oneMessage = statementAsTenant(db, a, CompiledQuery.raw('select pg_sleep(60) as one_message'), boundsEndingOn(endMessage.signal))
    await running('pg_sleep(60) as one_message')
    endMessage.abort()
    await t.rejects(oneMessage, { code: '57014', message: /user request/ }, 'the one-message statement too, by the cancel request the pooler passes on')

    done.stop = true
    await busyB
    t.same(bErrors, [], 'no statement of the other tenant was cancelled')
  })
})
