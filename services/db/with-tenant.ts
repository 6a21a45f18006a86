import { sql, type CompiledQuery, type Kysely, type Transaction } from 'kysely'
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
  /**
   * Sends one parameterless simple-protocol message (several statements, one round trip, which
   * PostgreSQL runs as one implicit transaction) and answers the last statement's rows.
   */
  simpleQuery: (text: string) => Promise<unknown[]>
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
        await sql.raw(beginTenantTransaction(tenantId, roleToSwitchTo(db))).execute(conn)
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

/**
 * One statement as the tenant, in one round trip: the tenant's settings and the statement, its
 * values written in as literals (inlineParameters), go as one simple-protocol message.
 * PostgreSQL runs such a message as one implicit transaction, so the settings
 * (set_config(..., true)) hold for the statement and end with it, exactly as in withTenant; a
 * write is committed when the answer comes, and a failing statement takes everything with it.
 * Answers the statement's rows (use `returning` to see what a write did).
 */
export async function statementAsTenant<R> (db: AppDatabase, tenantId: string, statement: CompiledQuery<R>): Promise<R[]> {
  const text = `${tenantSettings(tenantId, roleToSwitchTo(db))}; ${inlineParameters(statement)}`
  const release = await db.tenantConnections.acquire(tenantId)
  try {
    return await db.simpleQuery(text) as R[]
  } finally {
    release()
  }
}

/**
 * A compiled query with its parameters written into the text as literals, for the simple
 * protocol (statementAsTenant). Strings are quoted by pg's escapeLiteral (see withTenant); a NUL, which
 * PostgreSQL text cannot hold and the wire would read as the end of the message, is refused.
 * The query's own text must hold no `$n` other than its placeholders: build it with Kysely.
 */
export function inlineParameters (query: CompiledQuery): string {
  return query.sql.replace(/\$(\d+)/g, (_, n: string) => sqlLiteral(query.parameters[Number(n) - 1]))
}

function sqlLiteral (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') {
    if (value.includes('\0')) throw new Error('A SQL literal cannot hold a NUL character')
    return pg.escapeLiteral(value)
  }
  // A negative number goes in parentheses: after a minus sign its own would start a comment (`--`).
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') return value < 0 ? `(${String(value)})` : String(value)
  if (typeof value === 'boolean') return String(value)
  throw new Error(`No SQL literal for a ${typeof value} parameter`)
}

function roleToSwitchTo (db: AppDatabase): string | undefined {
  return db.switchRole === false ? undefined : db.appRole
}

/** `select set_config(...)` for the tenant, every value a quoted literal (see withTenant); no role switch without appRole. */
function tenantSettings (tenantId: string, appRole: string | undefined): string {
  const lit = pg.escapeLiteral
  const role = appRole === undefined ? '' : `, set_config('role', ${lit(appRole)}, true)`
  return `select set_config('app.tenant_id', ${lit(tenantId)}, true)${role}, set_config('application_name', ${lit(applicationName(tenantId))}, true)`
}

/** `begin; select set_config(...)` (see tenantSettings). */
export function beginTenantTransaction (tenantId: string, appRole: string | undefined): string {
  return `begin; ${tenantSettings(tenantId, appRole)}`
}

// PostgreSQL keeps 63 bytes of application_name; tenant ids are ASCII (the token's pattern).
export function applicationName (tenantId: string): string {
  return `tenant:${tenantId}`.slice(0, 63)
}

/** DATABASE_TENANT_MAX_CONNECTIONS as configured, or its default: a third of the pool, at least 1. */
export function tenantConnectionCap (poolSize: number, configured: number): number {
  return configured > 0 ? Math.min(configured, poolSize) : Math.max(1, Math.floor(poolSize / 3))
}
