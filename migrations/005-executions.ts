import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'
import { isolateByTenant } from './tenant-isolation.ts'

/**
 * Queued runs and their results. tenant_id leads the key and every index (as on every tenant
 * table); the idempotency key is unique per tenant (NULLs never collide), and a key older than
 * 24 h is cleared before a new submission reuses it.
 */
export function executionsMigration (appRole: string): Migration {
  return {
    async up (db: Kysely<any>) {
      const role = sql.id(appRole)
      await sql`
        create table executions (
          tenant_id text not null,
          execution_id uuid not null,
          user_id text not null,
          status text not null check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
          idempotency_key text,
          code_sha256 text not null,
          timeout_ms integer not null,
          submitted_at timestamptz not null default now(),
          started_at timestamptz,
          finished_at timestamptz,
          result jsonb,
          primary key (tenant_id, execution_id),
          unique (tenant_id, idempotency_key)
        )`.execute(db)
      // Newest first, for the list and its cursor; the status filter rides on it.
      await sql`create index executions_by_tenant_time on executions (tenant_id, submitted_at desc, execution_id desc)`.execute(db)
      // Retention pruning reads finished rows by age, one tenant at a time.
      await sql`create index executions_by_tenant_finished on executions (tenant_id, finished_at) where finished_at is not null`.execute(db)
      await isolateByTenant(db, 'executions')
      await sql`grant select, insert, update, delete on executions to ${role}`.execute(db)
    },
    async down (db: Kysely<any>) {
      await sql`drop table if exists executions`.execute(db)
    }
  }
}
