import { sql, type Transaction } from 'kysely'
import type { Database } from './schema.ts'
import type { AppDatabase } from './with-tenant.ts'

/**
 * A transaction on no tenant's behalf, as the app role (PGlite's session user is a superuser, so
 * the role is switched as in withTenant): for the global tables (platform_tools) and for the one
 * read a policy opens across tenants on purpose (the tenant directory's admin list). No tenant is
 * set, so every tenant policy sees nothing. `settings` are set with set_config(..., true): they
 * end with the transaction.
 */
export async function withAppRole<T> (db: AppDatabase, fn: (trx: Transaction<Database>) => Promise<T>, settings: Record<string, string> = {}): Promise<T> {
  return await db.kysely.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${db.appRole}, true)`.execute(trx)
    for (const [name, value] of Object.entries(settings)) await sql`select set_config(${name}, ${value}, true)`.execute(trx)
    return await fn(trx)
  })
}
