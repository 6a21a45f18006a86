import {
  CompiledQuery,
  PostgresIntrospector,
  SingleConnectionProvider,
  Transaction,
  type AbortableOperationOptions,
  type ControlConnectionProvider,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryExecutor,
  type QueryResult
} from 'kysely'
import pg from 'pg'
import type { KeyedSemaphore } from '../fifo-semaphore.ts'
import type { Database } from './schema.ts'
import { acquireConnectionShare, type TierConnections, type TierStatementMs } from './connection-shares.ts'
import { cancelOnRunEnd, runIsOver, RunEndedError, statementTimeoutMs, type RunBounds } from './run-bounds.ts'
import { beginTenantTransaction, inlineParameters, tenantSettings } from './tenant-settings.ts'

declare const tenantScoped: unique symbol

/**
 * A transaction already scoped to one tenant (RLS on, role switched). Only `withTenant` makes
 * one, so a repository that takes a TenantTrx cannot be handed a bare connection or a plain
 * transaction by mistake. The brand exists only for the type checker; the object is Kysely's own
 * Transaction, whose transaction() and connection() throw (see withTenant for what else it refuses).
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
  /** Connections each bounded tier's runs may hold together (see connection-shares.ts); absent: no tier bound. */
  tierConnections?: TierConnections
  tierStatementMs?: TierStatementMs // a tier's longest statement, if shorter than its runs
  /**
   * false only when the pool already logs in as appRole (checked at open): switching to the role
   * one already is would cost a catalog lookup per transaction for nothing. Absent means true.
   */
  switchRole?: boolean
  /**
   * Sends one parameterless simple-protocol message (several statements, one round trip, which
   * PostgreSQL runs as one implicit transaction) and answers the last statement's rows. When
   * `ended` aborts, the statement is cancelled (PostgreSQL; PGlite cannot).
   */
  simpleQuery: (text: string, ended?: AbortSignal) => Promise<unknown[]>
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
 * two; PGlite's dialect even lets it ride with the first statement), which cannot carry bind
 * parameters: the values are quoted as literals by pg's escapeLiteral (quotes doubled,
 * backslashes escaped), so no tenant id can end the literal. Kysely's own
 * `transaction().execute()` would send BEGIN alone, so the trx is built here instead, as a real
 * Kysely `Transaction` on the connection this function holds (see scopedTransaction).
 *
 * What `fn` cannot do with the trx it is given:
 * - open a nested transaction or take the connection: `transaction()`, `startTransaction()` and
 *   `connection()` throw (Kysely's Transaction), so the outer transaction is never committed
 *   from inside;
 * - send a statement that ends or steps out of the transaction or changes its scope (BEGIN,
 *   COMMIT, ROLLBACK, SAVEPOINT, SET, RESET, DISCARD, DO, set_config(...)): refused before it
 *   reaches the server (TenantScopeError). This reads the SQL text, so it stops mistakes, not
 *   someone determined to get round it; the next point is what holds regardless;
 * - commit work after the scope changed: the commit goes in one message after a check that
 *   app.tenant_id is still this tenant and the role still the app role. If not (cleared,
 *   another tenant, role reset, or the transaction ended early), PostgreSQL raises, nothing is
 *   committed, and withTenant rejects with TenantScopeError. A change undone before `fn` returns
 *   is not seen, and what was read meanwhile stays read: the check guards what is committed.
 * - use the trx after withTenant returned: its connection may belong to someone else by then.
 */
export async function withTenant<T> (db: AppDatabase, tenantId: string, fn: (trx: TenantTrx) => Promise<T>, bounds?: RunBounds): Promise<T> {
  if (bounds !== undefined) statementTimeoutMs(bounds)
  const release = await acquireConnectionShare(db.tenantConnections, db.tierConnections, tenantId, bounds)
  try {
    const executor = db.kysely.getExecutor()
    return await executor.provideConnection(async (connection) => {
      const scope = { open: true }
      // withTenant's own statements go through the same provider as the trx's, so a statement
      // `fn` left running is answered before the commit is sent (as Kysely's transactions do).
      const provider = new SingleConnectionProvider(new ScopedConnection(connection, scope))
      const own = async (text: string): Promise<QueryResult<unknown>> =>
        await provider.provideConnection(async () => await connection.executeQuery(CompiledQuery.raw(text)))
      const appRole = roleToSwitchTo(db)
      // Only a driver that can cancel (PostgreSQL; PGlite cannot) asks for the backend's pid,
      // and only for a run that can end while the transaction is open.
      const cancellable = bounds?.ended !== undefined && connection.cancelQuery !== undefined
      const control: ControlConnectionProvider = async (consumer) => { await executor.provideConnection(consumer) }
      let result: T
      let watch: { stop: () => Promise<void> } = { stop: async () => {} }
      try {
        const begun = await own(beginTenantTransaction(tenantId, appRole, bounds === undefined ? undefined : statementTimeoutMs(bounds), cancellable))
        if (cancellable) watch = cancelOnRunEnd(bounds, Number((begun.rows[0] as { pid?: unknown } | undefined)?.pid), control)
        result = await fn(scopedTransaction(executor.withConnectionProvider(provider)))
        // A run that ended meanwhile commits nothing: its caller was told TIMEOUT or CANCELLED.
        // No cancel may reach the commit, so the watch stops first.
        await watch.stop()
        if (runIsOver(bounds)) throw new RunEndedError()
        await own(`${assertTenantScope(tenantId, db.appRole)}; commit`)
      } catch (err) {
        // A cancel on its way lands before the rollback ends the transaction (see cancelOnRunEnd).
        await watch.stop()
        // A rollback that fails means the connection broke; pg's pool then drops it.
        await own('rollback').catch(() => {})
        throw runIsOver(bounds) && !(err instanceof RunEndedError) ? new RunEndedError(undefined, { cause: err }) : scopeFailure(err)
      } finally {
        scope.open = false
        // A cancel still on its way must land before the connection serves anyone else.
        await watch.stop()
      }
      return result
    })
  } finally {
    release()
  }
}

/** Thrown when a tenant transaction is misused or loses its scope; nothing of it is committed. */
export class TenantScopeError extends Error {
  override name = 'TenantScopeError'
}

const SCOPE_LOST = 'tenant transaction lost its scope'

/**
 * A statement that fails unless the transaction still runs as `tenantId` and `appRole`. After
 * a stray COMMIT or ROLLBACK the local settings are gone, so it fails then too. The failure is
 * a cast of a text that names the marker: PostgreSQL has no raise outside PL/pgSQL, and a DO
 * block costs about as much again as the whole transaction on PGlite. current_setting is
 * stable, not immutable, so the failing branch is never evaluated when planning.
 */
export function assertTenantScope (tenantId: string, appRole: string): string {
  const lit = pg.escapeLiteral
  return `select case when current_setting('app.tenant_id', true) = ${lit(tenantId)} and current_user = ${lit(appRole)} then 0 ` +
    `else ('${SCOPE_LOST}: app.tenant_id is ' || coalesce(quote_literal(current_setting('app.tenant_id', true)), 'unset') || ', role is ' || current_user)::int end`
}

function scopeFailure (err: unknown): unknown {
  const error = err as { code?: unknown, message?: unknown }
  if (typeof error?.message === 'string' && error.message.includes(SCOPE_LOST)) {
    return new TenantScopeError(`The ${error.message.slice(error.message.indexOf(SCOPE_LOST)).replace(/"$/, '')}: nothing was committed`, { cause: err })
  }
  // The check ran in a transaction that an earlier error (one `fn` caught) had aborted: its
  // work is gone, so the caller must not see a success.
  if (error?.code === '25P02') return new TenantScopeError('The tenant transaction was rolled back: a statement in it failed', { cause: err })
  return err
}

/**
 * Statements a TenantTrx refuses: any that ends, nests or steps out of the transaction, or
 * changes a setting (the tenant, the role) for the rest of it. Comments are dropped first.
 */
const SCOPE_BREAKING = /(?:^|;)\s*\(?\s*(?:begin|start|commit|end|rollback|abort|savepoint|release|prepare|set|reset|discard|do)\b|\bset_config\s*\(/i

export function breaksTenantScope (text: string): boolean {
  return SCOPE_BREAKING.test(text.replace(/\/\*[\s\S]*?\*\/|--[^\n]*/g, ' '))
}

/** The connection as a TenantTrx sees it: open only while withTenant runs, and only for work. */
class ScopedConnection implements DatabaseConnection {
  private readonly connection: DatabaseConnection
  private readonly scope: { open: boolean }

  constructor (connection: DatabaseConnection, scope: { open: boolean }) {
    this.connection = connection
    this.scope = scope
  }

  private check (query: CompiledQuery): void {
    if (!this.scope.open) throw new TenantScopeError('This tenant transaction has ended: a TenantTrx cannot be used after withTenant returns')
    if (breaksTenantScope(query.sql)) throw new TenantScopeError('A tenant transaction cannot end, nest or leave its transaction, nor change its settings; use withTenant for another transaction')
  }

  async executeQuery<R> (query: CompiledQuery, options?: AbortableOperationOptions): Promise<QueryResult<R>> {
    this.check(query)
    return await this.connection.executeQuery<R>(query, options)
  }

  // (cancelQuery and killSession, which an aborted query's signal would call, are not passed on:
  // nothing here runs a tenant query with a signal.)
  async * streamQuery<R> (query: CompiledQuery, chunkSize: number, options?: AbortableOperationOptions): AsyncIterableIterator<QueryResult<R>> {
    this.check(query)
    yield * this.connection.streamQuery<R>(query, chunkSize, options)
  }
}

const refuse = (): never => { throw new TenantScopeError('A tenant transaction has no driver of its own') }
/**
 * A Transaction's driver serves only transaction(), connection() and destroy(), which Kysely's
 * Transaction refuses before reaching it; this one refuses too, should that ever change. Of the
 * dialect, a Transaction uses only the introspector (trx.introspection).
 */
const noDriver: Driver = { init: refuse, acquireConnection: refuse, beginTransaction: refuse, commitTransaction: refuse, rollbackTransaction: refuse, releaseConnection: refuse, destroy: refuse }
const trxDialect: Dialect = {
  createAdapter: refuse,
  createDriver: refuse,
  createQueryCompiler: refuse,
  createIntrospector: (db) => new PostgresIntrospector(db)
}

/** Kysely's own Transaction class over an executor bound to withTenant's connection. */
function scopedTransaction (executor: QueryExecutor): TenantTrx {
  return new Transaction<Database>({ config: { dialect: trxDialect }, dialect: trxDialect, driver: noDriver, executor }) as TenantTrx
}

/**
 * One statement as the tenant, in one round trip: the tenant's settings and the statement, its
 * values written in as literals (inlineParameters), go as one simple-protocol message.
 * PostgreSQL runs such a message as one implicit transaction, so the settings
 * (set_config(..., true)) hold for the statement and end with it, exactly as in withTenant; a
 * write is committed when the answer comes, and a failing statement takes everything with it.
 * Answers the statement's rows (use `returning` to see what a write did).
 */
export async function statementAsTenant<R> (db: AppDatabase, tenantId: string, statement: CompiledQuery<R>, bounds?: RunBounds): Promise<R[]> {
  if (bounds !== undefined) statementTimeoutMs(bounds)
  const release = await acquireConnectionShare(db.tenantConnections, db.tierConnections, tenantId, bounds)
  try {
    // The timeout is worked out once the connection is near: the wait above took some of the run.
    return await db.simpleQuery(tenantStatementText(db, tenantId, statement, bounds === undefined ? undefined : statementTimeoutMs(bounds)), bounds?.ended) as R[]
  } finally {
    release()
  }
}

/** The one message statementAsTenant sends: the tenant's settings, then the statement (also timed alone by `npm run bench:tool-path`). */
export function tenantStatementText (db: AppDatabase, tenantId: string, statement: CompiledQuery, timeoutMs?: number): string {
  return `${tenantSettings(tenantId, roleToSwitchTo(db), timeoutMs)}; ${inlineParameters(statement)}`
}

function roleToSwitchTo (db: AppDatabase): string | undefined {
  return db.switchRole === false ? undefined : db.appRole
}

/** DATABASE_TENANT_MAX_CONNECTIONS as configured, or its default: a third of the pool, at least 1. */
export function tenantConnectionCap (poolSize: number, configured: number): number {
  return configured > 0 ? Math.min(configured, poolSize) : Math.max(1, Math.floor(poolSize / 3))
}
