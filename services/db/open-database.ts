import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { PGliteThread, type PGliteLike } from './pglite-thread.ts'
import type { FastifyBaseLogger } from 'fastify'
import { PGliteDialect } from './pglite-dialect.ts'
import { migrateToLatest } from './migrate.ts'
import type { Database } from './schema.ts'
import { tenantConnectionCap, type AppDatabase } from './with-tenant.ts'
import { KeyedSemaphore } from '../fifo-semaphore.ts'
import { taggingPool, type TaggingPool } from './pg-errors.ts'
import { tierConnections as tierConnectionsFor } from './connection-shares.ts'

export interface DatabaseSettings {
  DATABASE_URL?: string
  DATABASE_ADMIN_URL?: string
  DATABASE_APP_ROLE: string
  DATABASE_POOL_SIZE: number
  DATABASE_TENANT_MAX_CONNECTIONS: number
  DATABASE_FREE_SHARE_PERCENT: number
  DATABASE_STARTER_SHARE_PERCENT: number
  DATABASE_CPU_CORES: number
  DATABASE_FREE_STATEMENT_TIMEOUT_MS: number
  PGLITE_DIR?: string
  /**
   * Not an environment setting: a data dir dumped by PGliteThread.dumpDataDir (already
   * migrated) for an in-memory PGlite to start from, skipping initdb. The tests set it (see
   * test/support/pglite-snapshot.ts): they start a hundred or so apps, and initdb was most of
   * each start. Ignored with DATABASE_URL or PGLITE_DIR.
   */
  pgliteStartFrom?: string
  /**
   * Not an environment setting either: an open, migrated embedded database lent to this app,
   * which leaves it open when it closes. The tests lend one to every app of a test file, as
   * apps on one PostgreSQL share it; PGlite's one session is taken in turns (PGliteDialect).
   * Ignored with DATABASE_URL or PGLITE_DIR.
   */
  pgliteShared?: PGliteLike
}

export interface OpenedDatabase extends AppDatabase {
  embedded: boolean
  close: () => Promise<void>
}

function postgresKysely (connectionString: string, max: number, log: FastifyBaseLogger): { kysely: Kysely<Database>, pool: TaggingPool } {
  // A short connect timeout turns an unreachable server into a quick 503 rather than a hang.
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 3000, idleTimeoutMillis: 30_000 })
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', (err) => { log.warn({ err }, 'idle PostgreSQL client failed') })
  // A client that loses its server while checked out emits 'error' too; its query rejects anyway.
  pool.on('connect', (client) => { client.on('error', (err) => { log.warn({ err }, 'PostgreSQL connection lost') }) })
  // Connection failures reach the error handler tagged DatabaseUnavailableError (a 503).
  const tagged = taggingPool(pool)
  return { kysely: new Kysely<Database>({ dialect: new PostgresDialect({ pool: tagged }) }), pool: tagged }
}

/**
 * Opens the app's database and brings its schema up to date. With DATABASE_URL, a pg pool logs
 * in as the app role and migrations run as the owner (DATABASE_ADMIN_URL, else DATABASE_URL);
 * without it, embedded PGlite (in memory, or on disk in PGLITE_DIR) plays both parts.
 */
export async function openDatabase (settings: DatabaseSettings, log: FastifyBaseLogger): Promise<OpenedDatabase> {
  const appRole = settings.DATABASE_APP_ROLE
  const tenantConnections = new KeyedSemaphore(tenantConnectionCap(settings.DATABASE_POOL_SIZE, settings.DATABASE_TENANT_MAX_CONNECTIONS))
  const tierConnections = tierConnectionsFor({ poolSize: settings.DATABASE_POOL_SIZE, freePercent: settings.DATABASE_FREE_SHARE_PERCENT, starterPercent: settings.DATABASE_STARTER_SHARE_PERCENT, cpuCores: settings.DATABASE_CPU_CORES })
  const tierStatementMs = { free: settings.DATABASE_FREE_STATEMENT_TIMEOUT_MS }
  if (settings.DATABASE_URL !== undefined) {
    const { kysely, pool } = postgresKysely(settings.DATABASE_URL, settings.DATABASE_POOL_SIZE, log)
    try {
      if (settings.DATABASE_ADMIN_URL !== undefined) {
        const { kysely: owner } = postgresKysely(settings.DATABASE_ADMIN_URL, 1, log)
        try { await migrateToLatest(owner, appRole) } finally { await owner.destroy() }
      } else {
        await migrateToLatest(kysely, appRole)
      }
    } catch (err) {
      await kysely.destroy()
      throw err
    }
    // The app normally logs in as the app role itself (deploy/postgres-init.sql): then tenant
    // transactions need no role switch. The RLS self-check at start proves the role either way.
    let switchRole = true
    try {
      const who = await sql<{ user: string }>`select current_user as user`.execute(kysely)
      switchRole = who.rows[0]?.user !== appRole
    } catch (err) {
      await kysely.destroy()
      throw err
    }
    // One pooled client for the message (the tagging pool answers its last statement's rows).
    const simpleQuery = async (text: string, ended?: AbortSignal): Promise<unknown[]> => {
      const client = await pool.connect()
      // A run that ends cancels its statement now, by the protocol's cancel request (which a
      // pooler such as PgBouncer routes to the server connection running it; pg_cancel_backend
      // of the client's processID would name no backend there). The cancel must land before
      // the client serves anyone else.
      let cancelling: Promise<unknown> | undefined
      const onEnd = (): void => { cancelling = client.cancel() }
      ended?.addEventListener('abort', onEnd, { once: true })
      try {
        // No parameters: pg sends the simple protocol, which takes several statements.
        const result = await client.query(text, []) as unknown as pg.QueryResult
        return result.rows
      } finally {
        ended?.removeEventListener('abort', onEnd)
        await cancelling
        client.release()
      }
    }
    return { kysely, appRole, tenantConnections, tierConnections, tierStatementMs, switchRole, simpleQuery, embedded: false, close: async () => { await kysely.destroy() } }
  }

  // In a worker thread: PGlite's WASM would otherwise run every query on the event loop.
  const lent = settings.PGLITE_DIR === undefined ? settings.pgliteShared : undefined
  const pglite = lent ?? (settings.PGLITE_DIR === undefined
    ? new PGliteThread('memory://', settings.pgliteStartFrom)
    : new PGliteThread(settings.PGLITE_DIR))
  try {
    await pglite.waitReady
  } catch (err) {
    if (lent === undefined) await pglite.close().catch(() => {})
    throw err
  }
  const kysely = new Kysely<Database>({ dialect: new PGliteDialect(pglite, { owned: lent === undefined }) })
  try {
    await migrateToLatest(kysely, appRole)
  } catch (err) {
    await kysely.destroy()
    throw err
  }
  // Through the dialect, which hands PGlite's one session to one holder at a time; a message of
  // several statements goes to PGlite's exec, which answers the last one's rows.
  const simpleQuery = async (text: string): Promise<unknown[]> => (await sql.raw(text).execute(kysely)).rows
  return { kysely, appRole, tenantConnections, tierConnections, tierStatementMs, switchRole: true, simpleQuery, embedded: true, close: async () => { await kysely.destroy() } }
}
