import t from 'tap'
import { sql } from 'kysely'
import { buildApp, uniqueTenantId } from '../helper.ts'
import { beginTenantTransaction, withTenant } from '../../services/db/with-tenant.ts'

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
    t.equal(beginTenantTransaction("a'b", 'app'), "begin; select set_config('app.tenant_id', 'a''b', true), set_config('role', 'app', true), set_config('application_name', 'tenant:a''b', true)")
    t.equal(beginTenantTransaction('t', undefined), "begin; select set_config('app.tenant_id', 't', true), set_config('application_name', 'tenant:t', true)", 'no role switch when logged in as the app role')
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
    // PostgreSQL reports the lost commit (its ROLLBACK tag); PGlite gives no command tag, so
    // there the transaction is rolled back just the same but quietly (as before this change).
    if (process.env.DATABASE_URL !== undefined) await t.rejects(swallowed, { message: /rolled back/ })
    else await swallowed
    const rows = await withTenant(db, tenantId, async (trx) => await trx.selectFrom('documents').select('body').execute())
    t.same(rows, [], 'neither write survived')
    await withTenant(db, tenantId, async (trx) => { await insert(trx, 'kept') })
    t.equal((await withTenant(db, tenantId, async (trx) => await trx.selectFrom('documents').select('body').execute())).length, 1, 'the connection works after both')
  })
})
