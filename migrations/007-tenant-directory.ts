import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

/**
 * GET /admin/tenants lists tenants across tenants, which the tenants table's forced RLS
 * (tenant_isolation: one tenant per transaction) never shows. This second, read-only policy
 * shows every row to a transaction that has set `app.tenant_directory` to `on`; only the tenant
 * directory's list does (services/tenants/tenant-directory.ts), in a transaction of its own
 * that sets no tenant. Permissive policies add up for SELECT only: inserts, updates and deletes
 * still pass tenant_isolation alone, and the other tenant tables are untouched.
 */
export const tenantDirectoryMigration: Migration = {
  async up (db: Kysely<any>) {
    await sql`
      create policy tenant_directory on tenants for select
        using (current_setting('app.tenant_directory', true) = 'on')`.execute(db)
  },
  async down (db: Kysely<any>) {
    await sql`drop policy if exists tenant_directory on tenants`.execute(db)
  }
}
