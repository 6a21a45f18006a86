import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

/**
 * A waiting run's record counts toward its tenant's storage: each execution_journals row keeps
 * the bytes it was charged (its journal's and job's JSON text), and the tenant's counter
 * (tenant_storage.bytes) holds them beside its documents' bytes, moved by the statements that
 * write and delete the rows (services/executions/approvals/journal-store.ts). The rows already
 * there are measured and charged here, once.
 */
export const journalStorageMigration: Migration = {
  async up (db: Kysely<any>) {
    await sql`alter table execution_journals add column bytes bigint not null default 0 check (bytes >= 0)`.execute(db)
    // Both tables force RLS on their owner too: stepped out of it for this one count only, inside
    // the migration's transaction (an error rolls the step back with everything else).
    await sql`alter table execution_journals no force row level security`.execute(db)
    await sql`alter table tenant_storage no force row level security`.execute(db)
    await sql`update execution_journals set bytes = octet_length(journal::text) + octet_length(job::text)`.execute(db)
    await sql`
      insert into tenant_storage as s (tenant_id, bytes, documents)
      select tenant_id, sum(bytes), 0 from execution_journals group by tenant_id
      on conflict (tenant_id) do update set bytes = s.bytes + excluded.bytes, updated_at = now()`.execute(db)
    await sql`alter table tenant_storage force row level security`.execute(db)
    await sql`alter table execution_journals force row level security`.execute(db)
  },
  async down (db: Kysely<any>) {
    await sql`alter table execution_journals no force row level security`.execute(db)
    await sql`alter table tenant_storage no force row level security`.execute(db)
    await sql`
      update tenant_storage s set bytes = greatest(0, s.bytes - j.bytes), updated_at = now()
      from (select tenant_id, sum(bytes) as bytes from execution_journals group by tenant_id) j where j.tenant_id = s.tenant_id`.execute(db)
    await sql`alter table tenant_storage force row level security`.execute(db)
    await sql`alter table execution_journals force row level security`.execute(db)
    await sql`alter table execution_journals drop column if exists bytes`.execute(db)
  }
}
