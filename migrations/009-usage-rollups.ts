import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'
import { isolateByTenant } from './tenant-isolation.ts'
import { HISTOGRAM_BOUNDS, HISTOGRAM_BUCKETS } from '../services/audit/duration-histogram.ts'

const RUNS = sql.raw("action in ('code_execution', 'mcp.execute')")

/**
 * The meter of each run on its audit row, and usage_daily: per tenant, UTC day and user, the
 * sums the usage history, the per-user usage and the billing export read, so none of them
 * scans the audit log (90 days of a tenant with 1M audit rows took seconds). The audit writer
 * adds each batch's rows to it in the same transaction as it inserts them (upsert), so the
 * rollup always equals a recount of the audit log. A tenant table like the others: tenant_id
 * leads the key, RLS enabled and forced; a second, read-only policy opens it across tenants to
 * a transaction that sets `app.usage_directory` (the platform admin's GET /admin/usage only).
 *
 * Existing runs are rolled up here. audit_log forces RLS even for its owner, so the backfill
 * lifts the force for this one statement inside the migration's transaction and puts it back.
 */
export function usageRollupsMigration (appRole: string): Migration {
  return {
    async up (db: Kysely<any>) {
      const role = sql.id(appRole)
      for (const column of ['cpu_ms integer', 'peak_heap_bytes bigint', 'tool_time_ms integer', 'bytes_in bigint', 'bytes_out bigint']) {
        await sql`alter table audit_log add column ${sql.raw(column)}`.execute(db)
      }
      await sql`
        create table usage_daily (
          tenant_id text not null,
          day date not null,
          user_id text not null,
          executions bigint not null default 0,
          failures bigint not null default 0,
          tool_calls bigint not null default 0,
          cpu_ms bigint not null default 0,
          wall_ms bigint not null default 0,
          bytes_in bigint not null default 0,
          bytes_out bigint not null default 0,
          duration_histogram integer[] not null,
          primary key (tenant_id, day, user_id)
        )`.execute(db)
      await sql`alter table audit_log no force row level security`.execute(db)
      await rollUpAuditLog(db)
      await sql`alter table audit_log force row level security`.execute(db)
      await isolateByTenant(db, 'usage_daily')
      await sql`
        create policy usage_directory on usage_daily for select
          using (current_setting('app.usage_directory', true) = 'on')`.execute(db)
      await sql`grant select, insert, update, delete on usage_daily to ${role}`.execute(db)
    },
    async down (db: Kysely<any>) {
      await sql`drop table if exists usage_daily`.execute(db)
      for (const column of ['cpu_ms', 'peak_heap_bytes', 'tool_time_ms', 'bytes_in', 'bytes_out']) {
        await sql`alter table audit_log drop column if exists ${sql.raw(column)}`.execute(db)
      }
    }
  }
}

/**
 * Adds every audit row the executor can see to usage_daily (which must not hold them yet). The
 * migration runs it once with audit_log's RLS force lifted (all tenants); bench/usage-history.ts
 * runs it in a transaction set to one tenant (RLS scopes both tables to it).
 */
export async function rollUpAuditLog (db: Kysely<any>): Promise<void> {
  const bounds = sql.raw(`array[${HISTOGRAM_BOUNDS.join(',')}]::integer[]`)
  // One pass over the audit rows: sums per (tenant, day, user, duration bucket), then per
  // (tenant, day, user) with the buckets' counts gathered into the dense histogram array.
  await sql`
    insert into usage_daily (tenant_id, day, user_id, executions, failures, tool_calls, cpu_ms, wall_ms, bytes_in, bytes_out, duration_histogram)
    select tenant_id, day, user_id, executions, failures, tool_calls, cpu_ms, wall_ms, bytes_in, bytes_out,
           array(select coalesce((counts ->> b::text)::integer, 0) from generate_series(1, ${HISTOGRAM_BUCKETS}) as b order by b)
    from (
      select tenant_id, day, user_id, sum(executions) as executions, sum(failures) as failures, sum(tool_calls) as tool_calls,
             sum(cpu_ms) as cpu_ms, sum(wall_ms) as wall_ms, sum(bytes_in) as bytes_in, sum(bytes_out) as bytes_out,
             coalesce(jsonb_object_agg(bucket::text, executions) filter (where bucket is not null), '{}'::jsonb) as counts
      from (
        select tenant_id, (created_at at time zone 'UTC')::date as day, user_id, width_bucket(duration_ms, ${bounds}) as bucket,
               count(*) as executions, count(*) filter (where not success) as failures,
               coalesce(sum(tool_calls), 0) as tool_calls, coalesce(sum(cpu_ms), 0) as cpu_ms,
               coalesce(sum(duration_ms), 0) as wall_ms, coalesce(sum(bytes_in), 0) as bytes_in,
               coalesce(sum(bytes_out), 0) as bytes_out
        from audit_log where ${RUNS}
        group by 1, 2, 3, 4
      ) as per_bucket
      group by 1, 2, 3
    ) as per_user`.execute(db)
}
