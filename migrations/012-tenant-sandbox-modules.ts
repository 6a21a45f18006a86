import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

/**
 * A tenant's own list of the sandbox modules its scripts may import (`sandboxModules` of PUT
 * /admin/tenants/:id): null means every module the build offers; a list can only narrow that.
 * The tenants table's row-level security already covers the new column.
 */
export const tenantSandboxModulesMigration: Migration = {
  async up (db: Kysely<any>) {
    await sql`alter table tenants add column sandbox_modules jsonb`.execute(db)
  },
  async down (db: Kysely<any>) {
    await sql`alter table tenants drop column sandbox_modules`.execute(db)
  }
}
