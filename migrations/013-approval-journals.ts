import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'
import { isolateByTenant } from './tenant-isolation.ts'

const STATUSES = (list: string[]) => sql.raw(`check (status in (${list.map((s) => `'${s}'`).join(', ')}))`)
const BEFORE = ['queued', 'running', 'succeeded', 'failed', 'cancelled']
const AFTER = ['queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled']

/**
 * Runs that wait for a person's approval. `execution_journals`: a suspended run's record of its
 * tool calls and drawn values, and the job a later start needs (its code, language and
 * permissions), one row per waiting run, deleted when the run ends. `approval_decisions`: each
 * decision on a gated call with the decider, kept with the tenant's audit. Both tenant tables
 * with forced row-level security. The executions row's status may say awaiting_approval.
 */
export function approvalJournalsMigration (appRole: string): Migration {
  return {
    async up (db: Kysely<any>) {
      const role = sql.id(appRole)
      await sql`alter table executions drop constraint if exists executions_status_check`.execute(db)
      await sql`alter table executions add constraint executions_status_check ${STATUSES(AFTER)}`.execute(db)
      await sql`
        create table execution_journals (
          tenant_id text not null,
          execution_id uuid not null,
          journal json not null,
          job json not null,
          expires_at timestamptz not null,
          updated_at timestamptz not null default now(),
          primary key (tenant_id, execution_id)
        )`.execute(db)
      await sql`
        create table approval_decisions (
          tenant_id text not null,
          execution_id text not null,
          call_id text not null,
          tool text not null,
          approve boolean not null,
          reason text,
          decided_by text not null,
          decided_at timestamptz not null default now(),
          primary key (tenant_id, execution_id, call_id)
        )`.execute(db)
      for (const table of ['execution_journals', 'approval_decisions']) {
        await isolateByTenant(db, table)
        await sql`grant select, insert, update, delete on ${sql.id(table)} to ${role}`.execute(db)
      }
    },
    async down (db: Kysely<any>) {
      await sql`drop table if exists approval_decisions`.execute(db)
      await sql`drop table if exists execution_journals`.execute(db)
      await sql`alter table executions drop constraint if exists executions_status_check`.execute(db)
      await sql`alter table executions add constraint executions_status_check ${STATUSES(BEFORE)}`.execute(db)
    }
  }
}
