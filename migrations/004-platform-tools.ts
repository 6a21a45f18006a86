import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'
import { isolateByTenant } from './tenant-isolation.ts'

/**
 * platform_tools: the platform's HTTP tools, global (no tenant), written only through the admin
 * routes; `version` grows with every write, so compiled schemas are cached by name and version.
 * tool_calls: one row per tool call, a tenant table like audit_log (tenant_id first, RLS forced).
 */
export function platformToolsMigration (appRole: string): Migration {
  const role = sql.id(appRole)
  return {
    async up (db: Kysely<any>) {
      await sql`
        create table platform_tools (
          name text primary key,
          description text not null,
          args_schema jsonb not null,
          result_schema jsonb,
          http jsonb not null,
          default_enabled boolean not null default false,
          version integer not null default 1,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`.execute(db)
      // The service has one login role; admin writes run as it (like the tenants table's).
      await sql`grant select, insert, update, delete on platform_tools to ${role}`.execute(db)

      await sql`
        create table tool_calls (
          tenant_id text not null,
          execution_id text not null,
          call_index integer not null,
          tool text not null,
          code text not null,
          duration_ms integer not null,
          args_sha256 text not null,
          args_bytes integer not null,
          result_bytes integer,
          upstream_status integer,
          created_at timestamptz not null default now(),
          -- a retried batch is a no-op, never a duplicate
          primary key (tenant_id, execution_id, call_index)
        )`.execute(db)
      await sql`create index tool_calls_by_tenant_time on tool_calls (tenant_id, created_at)`.execute(db)
      await isolateByTenant(db, 'tool_calls')
      await sql`grant select, insert, update, delete on tool_calls to ${role}`.execute(db)
    },
    async down (db: Kysely<any>) {
      await sql`drop table if exists tool_calls`.execute(db)
      await sql`drop table if exists platform_tools`.execute(db)
    }
  }
}
