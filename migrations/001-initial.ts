import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'
import { isolateByTenant } from './tenant-isolation.ts'

// Each tenant table: tenant_id leads every key and index (ready for distribution by tenant),
// and RLS is enabled and forced, so even the table owner sees only the tenant set for the
// transaction. A missing setting becomes NULL, which matches no row: the tables fail closed.
const TENANT_TABLES = ['tenants', 'tenant_tools', 'documents', 'audit_log'] as const

export function initialMigration (appRole: string): Migration {
  const role = sql.id(appRole)
  return {
    async up (db: Kysely<any>) {
      // CI and production create the app role beforehand; the embedded database (a superuser
      // session) creates it here, without LOGIN, for tenant transactions to switch to.
      await sql`
        do $$ begin
          if not exists (select 1 from pg_roles where rolname = ${sql.lit(appRole)}) then
            create role ${role} nologin nosuperuser nobypassrls;
          end if;
        end $$`.execute(db)

      await sql`
        create table tenants (
          tenant_id text primary key,
          name text,
          tier text not null default 'free' check (tier in ('free', 'starter', 'enterprise')),
          quota_overrides jsonb not null default '{}'::jsonb,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        )`.execute(db)

      await sql`
        create table tenant_tools (
          tenant_id text not null,
          tool text not null,
          enabled boolean not null,
          rate_limit jsonb,
          config jsonb not null default '{}'::jsonb,
          updated_at timestamptz not null default now(),
          primary key (tenant_id, tool)
        )`.execute(db)

      await sql`
        create table documents (
          tenant_id text not null,
          collection text not null,
          id uuid not null default gen_random_uuid(),
          body jsonb not null,
          created_by text not null,
          created_at timestamptz not null default now(),
          primary key (tenant_id, collection, id)
        )`.execute(db)
      await sql`create index documents_by_tenant_collection_time on documents (tenant_id, collection, created_at)`.execute(db)
      // Containment filters (body @> ...) use this; RLS keeps the tenant predicate on every scan.
      await sql`create index documents_body_containment on documents using gin (body jsonb_path_ops)`.execute(db)

      await sql`
        create table audit_log (
          tenant_id text not null,
          id bigint generated always as identity,
          execution_id text not null,
          user_id text not null,
          action text not null,
          code_sha256 text,
          success boolean not null,
          error_code text,
          duration_ms integer,
          tool_calls integer not null default 0,
          created_at timestamptz not null default now(),
          primary key (tenant_id, id),
          -- a retried write of the same execution's row is a no-op, never a duplicate
          unique (tenant_id, execution_id)
        )`.execute(db)

      for (const table of TENANT_TABLES) {
        await isolateByTenant(db, table)
        await sql`grant select, insert, update, delete on ${sql.id(table)} to ${role}`.execute(db)
      }
      await sql`grant usage on schema public to ${role}`.execute(db)
    },

    async down (db: Kysely<any>) {
      for (const table of [...TENANT_TABLES].reverse()) {
        await sql`drop table if exists ${sql.id(table)}`.execute(db)
      }
    }
  }
}
