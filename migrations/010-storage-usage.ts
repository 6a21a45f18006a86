import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'
import { isolateByTenant } from './tenant-isolation.ts'

/**
 * What each tenant keeps, bounded by its tier's storageBytes and storageDocuments: one counter
 * row per tenant (bytes are the JSON text of the documents' bodies, as PostgreSQL prints jsonb),
 * moved by the data tools in the same statement as the documents they write, so the row and the
 * documents never disagree (services/tools/data-tools.ts). The documents already stored are
 * counted here, once.
 *
 * Also the tenants' per-user daily limits (`perUser` of PUT /admin/tenants/:id), beside their
 * quota overrides.
 */
export function storageUsageMigration (appRole: string): Migration {
  return {
    async up (db: Kysely<any>) {
      const role = sql.id(appRole)
      await sql`alter table tenants add column per_user_quotas jsonb not null default '{}'::jsonb`.execute(db)
      await sql`
        create table tenant_storage (
          tenant_id text primary key,
          bytes bigint not null default 0 check (bytes >= 0),
          documents bigint not null default 0 check (documents >= 0),
          updated_at timestamptz not null default now()
        )`.execute(db)
      await isolateByTenant(db, 'tenant_storage')
      // The tools only ever add to a row or move it; nothing deletes one.
      await sql`grant select, insert, update on tenant_storage to ${role}`.execute(db)

      // documents forces RLS on its owner too, so the owner running this sees no rows unless it
      // steps out of it: for this one count only, inside the migration's transaction (an error
      // rolls the step back with everything else).
      await sql`alter table documents no force row level security`.execute(db)
      await sql`alter table tenant_storage no force row level security`.execute(db)
      await sql`
        insert into tenant_storage (tenant_id, bytes, documents)
        select tenant_id, sum(octet_length(body::text)), count(*) from documents group by tenant_id`.execute(db)
      await sql`alter table tenant_storage force row level security`.execute(db)
      await sql`alter table documents force row level security`.execute(db)
    },
    async down (db: Kysely<any>) {
      await sql`drop table if exists tenant_storage`.execute(db)
      await sql`alter table tenants drop column if exists per_user_quotas`.execute(db)
    }
  }
}
