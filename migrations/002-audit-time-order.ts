import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

// Audit entries are listed by when they happened, not by when they were written: a row that
// waited in the retry queue during an outage is written after newer ones.
export const auditTimeOrderMigration: Migration = {
  async up (db: Kysely<any>) {
    await sql`create index audit_log_by_tenant_time on audit_log (tenant_id, created_at desc, id desc)`.execute(db)
  },
  async down (db: Kysely<any>) {
    await sql`drop index if exists audit_log_by_tenant_time`.execute(db)
  }
}
