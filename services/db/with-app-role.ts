import { sql, type Transaction } from 'kysely'
import type { Database } from './schema.ts'
import type { AppDatabase } from './with-tenant.ts'
import { CROSS_TENANT_SETTINGS } from './tenant-settings.ts'

/**
 * A transaction on no tenant's behalf, as the app role (PGlite's session user is a superuser, so
 * the role is switched as in withTenant): for the global tables (platform_tools) and for the one
 * read a policy opens across tenants on purpose (the tenant directory's admin list). No tenant is
 * set, so every tenant policy sees nothing. `settings` are set with set_config(..., true): they
 * end with the transaction.
 *
 * app.tenant_id and the cross-tenant settings (CROSS_TENANT_SETTINGS) are cleared for the
 * transaction (unless `settings` names them): behind a transaction pooler a server connection is shared by every client of
 * the pooler with the app role's login, and a session-level setting one of them left there
 * (`set app.tenant_id = ...` from psql, say) must not widen what this transaction sees.
 */
export async function withAppRole<T> (db: AppDatabase, fn: (trx: Transaction<Database>) => Promise<T>, settings: Record<string, string> = {}): Promise<T> {
  return await db.kysely.transaction().execute(async (trx) => {
    const cleared = Object.fromEntries(['app.tenant_id', ...CROSS_TENANT_SETTINGS].map((name) => [name, '']))
    const scoped: Record<string, string> = { ...cleared, ...settings }
    const names = Object.keys(scoped)
    // One statement: the role and every setting, each local to the transaction.
    await sql`select set_config('role', ${db.appRole}, true), ${sql.join(names.map((name) => sql`set_config(${name}, ${scoped[name]}, true)`))}`.execute(trx)
    return await fn(trx)
  })
}
