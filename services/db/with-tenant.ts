import { sql, type Kysely, type Transaction } from 'kysely'
import pg from 'pg'
import type { KeyedSemaphore } from '../fifo-semaphore.ts'
import type { Database } from './schema.ts'

declare const tenantScoped: unique symbol

/**
 * A transaction already scoped to one tenant (RLS on, role switched). Only `withTenant` makes
 * one, so a repository that takes a TenantTrx cannot be handed a bare connection or a plain
 * transaction by mistake. The brand exists only for the type checker.
 */
export type TenantTrx = Transaction<Database> & { readonly [tenantScoped]: true }

/** The app's database handle: the Kysely instance and the non-owner role tenant work runs as. */
export interface AppDatabase {
  kysely: Kysely<Database>
  appRole: string
  /**
   * Connections one tenant's transactions may hold at once (DATABASE_TENANT_MAX_CONNECTIONS):
   * a tenant's extra transactions wait here, in order, before they take a pooled connection,
   * so one tenant can never hold the whole pool while the others wait for it.
   */
  tenantConnections: KeyedSemaphore
  /**
   * false only when the pool already logs in as appRole (checked at open): switching to the role
   * one already is would cost a catalog lookup per transaction for nothing. Absent means true.
   */
  switchRole?: boolean
}

/**
 * Runs `fn` in a transaction scoped to one tenant: RLS sees only that tenant's rows. The rule
 * (as in Kysely's example): the use case or route calls withTenant, repositories take the trx.
 * The tenant and the role are set with set_config(..., true), so both end with the transaction
 * and never leak to the next user of a pooled connection. Switching the role matters where
 * the login role owns the tables or is a superuser (PGlite): RLS would not hold for it.
 * application_name names the tenant in pg_stat_activity while the transaction lasts.
 *
 * BEGIN and the three settings go in one simple-protocol statement (one round trip instead of
 * two), which cannot carry bind parameters: the values are quoted as literals by pg's
 * escapeLiteral (quotes doubled, backslashes escaped), so no tenant id can end the literal.
 */
export async function withTenant<T> (db: AppDatabase, tenantId: string, fn: (trx: TenantTrx) => Promise<T>): Promise<T> {
  const release = await db.tenantConnections.acquire(tenantId)
  try {
    return await db.kysely.connection().execute(async (conn) => {
      let result: T
      try {
        await sql.raw(beginTenantTransaction(tenantId, db.switchRole === false ? undefined : db.appRole)).execute(conn)
        result = await fn(conn as unknown as TenantTrx)
      } catch (err) {
        // A rollback that fails means the connection broke; pg's pool then drops it.
        await sql.raw('rollback').execute(conn).catch(() => {})
        throw err
      }
      const committed = await sql.raw<{ command?: string }>('commit').execute(conn)
      // PostgreSQL answers COMMIT with ROLLBACK when a statement failed inside the transaction
      // (an error `fn` caught): its work is gone, so the caller must not see a success.
      if (committed.rows[0]?.command === 'ROLLBACK') throw new Error('The tenant transaction was rolled back: a statement in it failed')
      return result
    })
  } finally {
    release()
  }
}

/** `begin; select set_config(...)` with every value a quoted literal (see withTenant); no role switch without appRole. */
export function beginTenantTransaction (tenantId: string, appRole: string | undefined): string {
  const lit = pg.escapeLiteral
  const role = appRole === undefined ? '' : `, set_config('role', ${lit(appRole)}, true)`
  return `begin; select set_config('app.tenant_id', ${lit(tenantId)}, true)${role}, set_config('application_name', ${lit(applicationName(tenantId))}, true)`
}

// PostgreSQL keeps 63 bytes of application_name; tenant ids are ASCII (the token's pattern).
export function applicationName (tenantId: string): string {
  return `tenant:${tenantId}`.slice(0, 63)
}

/** DATABASE_TENANT_MAX_CONNECTIONS as configured, or its default: a third of the pool, at least 1. */
export function tenantConnectionCap (poolSize: number, configured: number): number {
  return configured > 0 ? Math.min(configured, poolSize) : Math.max(1, Math.floor(poolSize / 3))
}
