import { sql } from 'kysely'
import { withTenant, type AppDatabase } from './with-tenant.ts'

export const TENANT_TABLES = ['tenants', 'tenant_tools', 'documents', 'audit_log', 'tool_calls', 'executions', 'usage_daily', 'tenant_storage', 'execution_journals', 'approval_decisions']

/**
 * Proves, before the service takes traffic, that tenant transactions run as a role that RLS
 * binds: not a superuser, no BYPASSRLS, not the tables' owner, and every tenant table has RLS
 * enabled and forced. Throws (and the service refuses to start) otherwise.
 */
export async function assertTenantRoleIsBoundByRls (db: AppDatabase): Promise<void> {
  const problems = await withTenant(db, 'rls-self-check', async (trx) => {
    const found: string[] = []
    const role = await sql<{ rolname: string, rolsuper: boolean, rolbypassrls: boolean }>`
      select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user`.execute(trx)
    const current = role.rows[0]
    if (current === undefined) found.push('current role not found in pg_roles')
    else {
      if (current.rolname !== db.appRole) found.push(`tenant transactions run as ${current.rolname}, expected ${db.appRole}`)
      if (current.rolsuper) found.push(`role ${current.rolname} is a superuser`)
      if (current.rolbypassrls) found.push(`role ${current.rolname} has BYPASSRLS`)
    }
    const tables = await sql<{ relname: string, relrowsecurity: boolean, relforcerowsecurity: boolean, owned: boolean }>`
      select c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) = current_user as owned
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind = 'r' and c.relname = any(${TENANT_TABLES})`.execute(trx)
    for (const table of TENANT_TABLES) {
      const row = tables.rows.find((r) => r.relname === table)
      if (row === undefined) found.push(`table ${table} is missing`)
      else {
        if (!row.relrowsecurity) found.push(`table ${table} does not enable row level security`)
        if (!row.relforcerowsecurity) found.push(`table ${table} does not force row level security`)
        if (row.owned) found.push(`the tenant role owns table ${table}`)
      }
    }
    return found
  })
  if (problems.length > 0) {
    throw new Error(`Row-level security self-check failed: ${problems.join('; ')}`)
  }
}
