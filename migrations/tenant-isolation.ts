import { sql, type Kysely } from 'kysely'

/**
 * The tenant-isolation policy every tenant table gets, shared by the migrations that create
 * tenant tables. Frozen like a migration: the SQL it runs must never change (databases that ran
 * the early migrations got exactly this); a new rule is a new migration.
 */
export const CURRENT_TENANT = sql.raw("nullif(current_setting('app.tenant_id', true), '')")

/** RLS on and forced (the owner too), rows visible and writable only under their tenant. */
export async function isolateByTenant (db: Kysely<any>, table: string): Promise<void> {
  const name = sql.table(table)
  await sql`alter table ${name} enable row level security`.execute(db)
  await sql`alter table ${name} force row level security`.execute(db)
  await sql`
    create policy tenant_isolation on ${name}
      using (tenant_id = ${CURRENT_TENANT})
      with check (tenant_id = ${CURRENT_TENANT})`.execute(db)
}
