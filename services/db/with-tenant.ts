import { sql, type Kysely, type Transaction } from 'kysely'
import type { Database } from './schema.ts'

export type Trx = Transaction<Database>

/** The app's database handle: the Kysely instance and the non-owner role tenant work runs as. */
export interface AppDatabase {
  kysely: Kysely<Database>
  appRole: string
}

/**
 * Runs `fn` in a transaction scoped to one tenant: RLS sees only that tenant's rows.
 * The tenant and the role are set with set_config(..., true), so both end with the transaction
 * and never leak to the next user of a pooled connection. Switching the role matters where
 * the login role owns the tables or is a superuser (PGlite): RLS would not hold for it.
 */
export async function withTenant<T> (db: AppDatabase, tenantId: string, fn: (trx: Trx) => Promise<T>): Promise<T> {
  return await db.kysely.transaction().execute(async (trx) => {
    await sql`select set_config('app.tenant_id', ${tenantId}, true), set_config('role', ${db.appRole}, true)`.execute(trx)
    return await fn(trx)
  })
}
