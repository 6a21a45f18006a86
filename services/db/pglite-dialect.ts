import type { PGliteLike } from './pglite-thread.ts'
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult
} from 'kysely'

/**
 * Kysely dialect for embedded PGlite (in a worker thread: see pglite-thread.ts). PGlite is one
 * session, so the driver hands out that session to one holder at a time: a transaction keeps it
 * until commit or rollback, and no other query can slip into the middle of it.
 */
export class PGliteDialect implements Dialect {
  private readonly pglite: PGliteLike

  constructor (pglite: PGliteLike) {
    this.pglite = pglite
  }

  createAdapter () { return new PostgresAdapter() }
  createDriver (): Driver { return new PGliteDriver(this.pglite) }
  createQueryCompiler () { return new PostgresQueryCompiler() }
  createIntrospector (db: Kysely<any>) { return new PostgresIntrospector(db) }
}

class PGliteDriver implements Driver {
  private readonly connection: PGliteConnection
  private queue: Promise<void> = Promise.resolve()
  private release: (() => void) | undefined

  private readonly pglite: PGliteLike

  constructor (pglite: PGliteLike) {
    this.pglite = pglite
    this.connection = new PGliteConnection(pglite)
  }

  async init (): Promise<void> { await this.pglite.waitReady }

  async acquireConnection (): Promise<DatabaseConnection> {
    const previous = this.queue
    let release!: () => void
    this.queue = new Promise<void>((resolve) => { release = resolve })
    await previous
    this.release = release
    return this.connection
  }

  async releaseConnection (): Promise<void> {
    this.connection.dropDeferred()
    const release = this.release
    this.release = undefined
    release?.()
  }

  async beginTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'))
  }

  async commitTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }

  async rollbackTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
  }

  async destroy (): Promise<void> {
    if (!this.pglite.closed) await this.pglite.close()
  }
}

// withTenant's `begin; select set_config(...)`: its answer is never read, so it can wait and
// travel with the next statement, which saves one hop to the worker thread per transaction.
const DEFERRABLE = /^begin; select set_config\(/

class PGliteConnection implements DatabaseConnection {
  private readonly pglite: PGliteLike
  private deferred: string | undefined

  constructor (pglite: PGliteLike) {
    this.pglite = pglite
  }

  /** A holder that leaves without another statement: what it deferred never runs. */
  dropDeferred (): void { this.deferred = undefined }

  async executeQuery<R> (query: CompiledQuery): Promise<QueryResult<R>> {
    const before = this.deferred
    this.deferred = undefined
    if (query.parameters.length === 0 && DEFERRABLE.test(query.sql) && before === undefined) {
      // Runs (or fails) with the next statement, inside the same transaction.
      this.deferred = query.sql
      return { rows: [] }
    }
    // Several statements without parameters need the simple protocol, which is exec(); its
    // last statement's result is the answer.
    if (query.parameters.length === 0 && (query.sql.includes(';') || before !== undefined)) {
      const results = await this.pglite.exec(before === undefined ? query.sql : `${before}; ${query.sql}`)
      return { rows: (results[results.length - 1]?.rows ?? []) as R[] }
    }
    const result = await this.pglite.query<R>(query.sql, query.parameters as unknown[], before)
    return {
      rows: result.rows,
      ...(result.affectedRows !== undefined && /^\s*(insert|update|delete|merge)/i.test(query.sql)
        ? { numAffectedRows: BigInt(result.affectedRows) }
        : {})
    }
  }

  async * streamQuery<R> (): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGlite dialect does not support streaming')
  }
}
