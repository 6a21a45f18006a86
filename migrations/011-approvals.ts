import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

const APPROVAL = sql.raw("check (approval in ('never', 'always'))")

/**
 * Approvals: a platform tool's default (`never` unless the admin said otherwise) and a tenant's
 * override on its tool setting (null: follow the tool's default). Built-ins carry their default
 * in code.
 */
export const approvalsMigration: Migration = {
  async up (db: Kysely<any>) {
    await sql`alter table platform_tools add column approval text not null default 'never' ${APPROVAL}`.execute(db)
    await sql`alter table tenant_tools add column approval text ${APPROVAL}`.execute(db)
  },
  async down (db: Kysely<any>) {
    await sql`alter table tenant_tools drop column if exists approval`.execute(db)
    await sql`alter table platform_tools drop column if exists approval`.execute(db)
  }
}
