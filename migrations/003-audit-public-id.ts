import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

// audit_log.id comes from one sequence shared by all tenants, so a tenant could count other
// tenants' runs between two of its own ids. Clients now see public_id, a random UUID (v4: the
// row's time is already public as createdAt, and v4 leaks nothing else); id stays internal.
export const auditPublicIdMigration: Migration = {
  async up (db: Kysely<any>) {
    // A volatile default gives every existing row its own value.
    await sql`alter table audit_log add column public_id uuid not null default gen_random_uuid()`.execute(db)
    // The paging cursor is looked up by it, within the tenant.
    await sql`create unique index audit_log_by_tenant_public_id on audit_log (tenant_id, public_id)`.execute(db)
  },
  async down (db: Kysely<any>) {
    await sql`drop index if exists audit_log_by_tenant_public_id`.execute(db)
    await sql`alter table audit_log drop column if exists public_id`.execute(db)
  }
}
