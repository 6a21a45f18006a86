import t from 'tap'
import { sql } from 'kysely'
import pg from 'pg'
import { buildApp, uniqueTenantId } from './helper.ts'
import { withTenant } from '../services/db/with-tenant.ts'

t.test('row-level security', async (t) => {
  const app = await buildApp(t)
  const db = app.db
  const tenantA = uniqueTenantId('rls-a')
  const tenantB = uniqueTenantId('rls-b')

  const insertDoc = async (tenantId: string, secret: string) => await withTenant(db, tenantId, async (trx) =>
    await trx.insertInto('documents').values({ tenant_id: tenantId, collection: 'data', body: JSON.stringify({ secret }), created_by: 'u' }).execute())
  await insertDoc(tenantA, 'a-secret')
  await insertDoc(tenantB, 'b-secret')

  t.test('each tenant sees only its own rows', async (t) => {
    for (const [tenant, secret] of [[tenantA, 'a-secret'], [tenantB, 'b-secret']]) {
      const rows = await withTenant(db, tenant, async (trx) => await trx.selectFrom('documents').select(['tenant_id', 'body']).execute())
      t.same(rows.map((r) => [r.tenant_id, r.body]), [[tenant, { secret }]])
    }
  })

  t.test('a filter naming another tenant finds nothing', async (t) => {
    const rows = await withTenant(db, tenantA, async (trx) =>
      await trx.selectFrom('documents').selectAll().where('tenant_id', '=', tenantB).execute())
    t.same(rows, [])
  })

  t.test('with no tenant set, the app role sees zero rows and cannot insert', async (t) => {
    await db.kysely.transaction().execute(async (trx) => {
      await sql`select set_config('role', ${db.appRole}, true)`.execute(trx)
      const count = await sql<{ n: number }>`select count(*)::int as n from documents`.execute(trx)
      t.equal(count.rows[0]?.n, 0)
      const tenants = await sql<{ n: number }>`select count(*)::int as n from audit_log`.execute(trx)
      t.equal(tenants.rows[0]?.n, 0)
    })
    await t.rejects(db.kysely.transaction().execute(async (trx) => {
      await sql`select set_config('role', ${db.appRole}, true)`.execute(trx)
      await sql`insert into documents (tenant_id, collection, body, created_by) values (${tenantA}, 'data', '{}', 'u')`.execute(trx)
    }), /row-level security/)
  })

  t.test('an empty tenant setting fails closed too', async (t) => {
    const rows = await withTenant(db, '', async (trx) => await trx.selectFrom('documents').selectAll().execute())
    t.same(rows, [])
  })

  t.test('a row with another tenant\'s tenant_id is refused', async (t) => {
    await t.rejects(withTenant(db, tenantA, async (trx) =>
      await trx.insertInto('documents').values({ tenant_id: tenantB, collection: 'data', body: '{}', created_by: 'u' }).execute()), /row-level security/)
    await t.rejects(withTenant(db, tenantA, async (trx) =>
      await trx.updateTable('documents').set({ tenant_id: tenantB }).where('tenant_id', '=', tenantA).execute()), /row-level security/)
    const rowsOfB = await withTenant(db, tenantB, async (trx) => await trx.selectFrom('documents').select('body').execute())
    t.same(rowsOfB.map((r) => r.body), [{ secret: 'b-secret' }], 'B still has exactly its one row')
  })

  t.test('updates and deletes cannot reach another tenant', async (t) => {
    const updated = await withTenant(db, tenantA, async (trx) =>
      await trx.updateTable('documents').set({ body: '{"owned":true}' }).where('tenant_id', '=', tenantB).executeTakeFirst())
    t.equal(updated.numUpdatedRows, 0n)
    const deleted = await withTenant(db, tenantA, async (trx) => await trx.deleteFrom('documents').where('tenant_id', '=', tenantB).executeTakeFirst())
    t.equal(deleted.numDeletedRows, 0n)
  })

  t.test('the tenant role is neither superuser nor BYPASSRLS', async (t) => {
    const role = await withTenant(db, tenantA, async (trx) =>
      await sql<{ rolname: string, rolsuper: boolean, rolbypassrls: boolean }>`select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user`.execute(trx))
    t.same(role.rows, [{ rolname: db.appRole, rolsuper: false, rolbypassrls: false }])
  })

  t.test('raw SQL as the app role with a forged setting for A cannot read B', async (t) => {
    const forgeA = "select set_config('app.tenant_id', $1, true)"
    const readAll = 'select tenant_id from documents'
    const readB = 'select tenant_id from documents where tenant_id = $1'
    let everything: Array<{ tenant_id: string }>
    let onlyB: unknown[]
    if (process.env.DATABASE_URL !== undefined) {
      // On a real server: a plain connection that logs in as the app role itself. One
      // transaction, its setting local to it: behind a transaction pooler each statement outside
      // a transaction may reach another server connection, and a session-level setting would
      // stay on one for the next client.
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
      await client.connect()
      try {
        await client.query('begin')
        await client.query(forgeA, [tenantA])
        everything = (await client.query(readAll)).rows
        onlyB = (await client.query(readB, [tenantB])).rows
        await client.query('rollback')
      } finally { await client.end() }
    } else {
      // Embedded: the login role is a superuser, so switch to the app role first, as the app does.
      ({ everything, onlyB } = await db.kysely.transaction().execute(async (trx) => {
        await sql`select set_config('role', ${db.appRole}, true)`.execute(trx)
        await sql`select set_config('app.tenant_id', ${tenantA}, false)`.execute(trx)
        return {
          everything: (await sql<{ tenant_id: string }>`select tenant_id from documents`.execute(trx)).rows,
          onlyB: (await sql`select tenant_id from documents where tenant_id = ${tenantB}`.execute(trx)).rows
        }
      }))
    }
    t.same(everything.map((r) => r.tenant_id), [tenantA], 'only A\'s rows, never B\'s')
    t.same(onlyB, [])
  })

  t.test('the service refuses to start when the tenant role can bypass RLS', async (t) => {
    // The embedded database's login role is a superuser; on a real server, the table owner.
    const ownerRole = process.env.DATABASE_ADMIN_URL !== undefined
      ? new URL(process.env.DATABASE_ADMIN_URL).username
      : 'postgres'
    await t.rejects(buildApp(t, { DATABASE_APP_ROLE: ownerRole }), /self-check failed|permission denied to set role/)
  })
})
