import t from 'tap'
import { sql } from 'kysely'
import { buildApp, uniqueTenantId } from '../helper.ts'
import { statementAsTenant, withTenant } from '../../services/db/with-tenant.ts'
import { beginTenantTransaction, inlineParameters } from '../../services/db/tenant-settings.ts'

// withTenant sends BEGIN and its settings as one statement with quoted literals (one round trip
// fewer). These prove the quoting holds, the settings end with the transaction, and a failure
// rolls everything back, on PGlite and (with DATABASE_URL) on real PostgreSQL.
t.test('withTenant in one round trip keeps its guarantees', async (t) => {
  const app = await buildApp(t)
  const db = app.db

  t.test('values that would break out of a literal arrive verbatim', async (t) => {
    for (const tenantId of ["o'brien", "x', true); select set_config('app.tenant_id', 'victim", 'back\\slash\\', "'; commit; drop table documents; --"]) {
      const seen = await withTenant(db, tenantId, async (trx) =>
        (await sql<{ tenant: string, role: string }>`select current_setting('app.tenant_id') as tenant, current_user as role`.execute(trx)).rows[0])
      t.same(seen, { tenant: tenantId, role: db.appRole }, JSON.stringify(tenantId))
    }
    const closed = ", set_config('app.tenant_directory', '', true), set_config('app.usage_directory', '', true)"
    t.equal(beginTenantTransaction("a'b", 'app'), `begin; select set_config('app.tenant_id', 'a''b', true), set_config('role', 'app', true), set_config('application_name', 'tenant:a''b', true)${closed}`)
    t.equal(beginTenantTransaction('t', undefined), `begin; select set_config('app.tenant_id', 't', true), set_config('application_name', 'tenant:t', true)${closed}`, 'no role switch when logged in as the app role')
    t.equal(db.switchRole, process.env.DATABASE_URL === undefined, 'PGlite (a superuser session) switches; the app role login (CI) does not need to')
    const count = await withTenant(db, 'x', async (trx) => (await sql<{ n: number }>`select count(*)::int as n from pg_tables where tablename = 'documents'`.execute(trx)).rows[0]?.n)
    t.equal(count, 1, 'the documents table is still there')
  })

  t.test('the settings end with the transaction', async (t) => {
    await withTenant(db, uniqueTenantId('scope'), async () => {})
    const after = await db.kysely.connection().execute(async (conn) =>
      (await sql<{ tenant: string | null }>`select nullif(current_setting('app.tenant_id', true), '') as tenant`.execute(conn)).rows[0])
    t.same(after, { tenant: null }, 'no tenant left on the connection')
  })

  t.test('a throw rolls back, and a caught statement error fails the commit', async (t) => {
    const tenantId = uniqueTenantId('rollback')
    const insert = async (trx: Parameters<Parameters<typeof withTenant>[2]>[0], secret: string): Promise<void> => {
      await trx.insertInto('documents').values({ tenant_id: tenantId, collection: 'data', body: JSON.stringify({ secret }), created_by: 'u' }).execute()
    }
    await t.rejects(withTenant(db, tenantId, async (trx) => { await insert(trx, 'thrown'); throw new Error('boom') }), { message: 'boom' })
    const swallowed = withTenant(db, tenantId, async (trx) => {
      await insert(trx, 'swallowed')
      await sql`select 1/0`.execute(trx).catch(() => {})
    })
    // The scope check sent with the commit fails in an aborted transaction, on PGlite as on PostgreSQL.
    await t.rejects(swallowed, { name: 'TenantScopeError', message: /rolled back: a statement in it failed/ })
    const rows = await withTenant(db, tenantId, async (trx) => await trx.selectFrom('documents').select('body').execute())
    t.same(rows, [], 'neither write survived')
    await withTenant(db, tenantId, async (trx) => { await insert(trx, 'kept') })
    t.equal((await withTenant(db, tenantId, async (trx) => await trx.selectFrom('documents').select('body').execute())).length, 1, 'the connection works after both')
  })
})

// statementAsTenant sends the settings and one statement as one message, which PostgreSQL runs as
// one implicit transaction. One pooled connection, so "after" is asked of the same session.
t.test('statementAsTenant: one statement as the tenant, in one round trip', async (t) => {
  const app = await buildApp(t, { DATABASE_POOL_SIZE: '1' })
  const db = app.db
  const mine = uniqueTenantId('read-mine')
  const theirs = uniqueTenantId('read-theirs')
  for (const [tenantId, secret] of [[mine, 'mine'], [theirs, 'theirs']]) {
    await withTenant(db, tenantId, async (trx) => {
      await trx.insertInto('documents').values({ tenant_id: tenantId, collection: 'data', body: JSON.stringify({ secret }), created_by: 'u' }).execute()
    })
  }
  const settingsNow = async (): Promise<unknown> => (await db.simpleQuery("select nullif(current_setting('app.tenant_id', true), '') as tenant, current_user as role"))[0]
  const loginRole = (await settingsNow() as { role: string }).role

  t.test('it sees only the tenant\'s rows, as the app role, and leaves nothing behind', async (t) => {
    const seen = await statementAsTenant(db, mine,
      sql<{ secret: string, tenant: string, role: string }>`select body->>'secret' as secret, current_setting('app.tenant_id') as tenant, current_user as role from documents`.compile(db.kysely))
    t.same(seen, [{ secret: 'mine', tenant: mine, role: db.appRole }])
    t.same(await settingsNow(), { tenant: null, role: loginRole }, 'no tenant and no role switch outlive the statement')
  })

  t.test('a failing statement takes the settings with it', async (t) => {
    await t.rejects(statementAsTenant(db, mine, sql`select 1/0`.compile(db.kysely)), { message: /division by zero/ })
    t.same(await settingsNow(), { tenant: null, role: loginRole })
    t.equal(db.tenantConnections.inUse(mine), 0, 'its connection slot is given back')
  })

  t.test('a write is committed with the answer; a failing one leaves nothing', async (t) => {
    const insert = (secret: string, n: string) => db.kysely.insertInto('documents')
      .values({ tenant_id: mine, collection: 'writes', body: JSON.stringify({ secret }), created_by: sql<string>`(1 / ${n}::int)::text` })
      .returning('created_by').compile()
    t.same(await statementAsTenant(db, mine, insert('kept', '1')), [{ created_by: '1' }])
    await t.rejects(statementAsTenant(db, mine, insert('lost', '0')), { message: /division by zero/ })
    const stored = await withTenant(db, mine, async (trx) => await trx.selectFrom('documents').select(sql<string>`body->>'secret'`.as('secret')).where('collection', '=', 'writes').execute())
    t.same(stored, [{ secret: 'kept' }])
    await t.rejects(statementAsTenant(db, mine, db.kysely.insertInto('documents').values({ tenant_id: theirs, collection: 'writes', body: '{}', created_by: 'u' }).compile()),
      { message: /row-level security/ }, 'RLS holds for writes: no row for another tenant')
  })

  t.test('values inlined into the statement arrive verbatim and cannot end their literal', async (t) => {
    for (const value of ["o'brien", 'back\\slash\\', "'); select set_config('app.tenant_id', '" + theirs + "', true); --", 'naïve ✓ "quoted"']) {
      const statement = sql<{ v: string, n: number }>`select ${value}::text as v, count(*)::int as n from documents where collection = 'data'`.compile(db.kysely)
      t.same(await statementAsTenant(db, mine, statement), [{ v: value, n: 1 }], JSON.stringify(value))
    }
    t.throws(() => inlineParameters(sql`select ${'a\0b'}::text`.compile(db.kysely)), { message: /NUL/ }, 'a NUL, which would end the message, is refused')
    t.throws(() => inlineParameters(sql`select ${{ a: 1 }}`.compile(db.kysely)), { message: /No SQL literal/ })
    t.equal(inlineParameters(sql`select ${1.5}, ${null}, ${true}, ${'$1'}`.compile(db.kysely)), "select 1.5, null, true, '$1'", 'a value is never read as a placeholder')
    const minus = sql<{ n: number }>`select 1 -${-1} as n`.compile(db.kysely)
    t.equal(inlineParameters(minus), 'select 1 -(-1) as n', 'a negative number cannot start a comment')
    t.same(await statementAsTenant(db, mine, minus), [{ n: 2 }])
  })
})
