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
 * until commit or rollback, and no other query can slip into the middle of it. The turn belongs
 * to the session, not to the dialect: several dialects on one PGlite (the test suite's apps
 * share one a process) take turns with each other too.
 *
 * `owned: false`: the dialect's destroy() leaves PGlite open for whoever lent it.
 */
export class PGliteDialect implements Dialect {
  private readonly pglite: PGliteLike
  private readonly owned: boolean

  constructor (pglite: PGliteLike, options: { owned?: boolean } = {}) {
    this.pglite = pglite
    this.owned = options.owned ?? true
  }

  createAdapter () { return new PostgresAdapter() }
  createDriver (): Driver { return new PGliteDriver(this.pglite, this.owned) }
  createQueryCompiler () { return new PostgresQueryCompiler() }
  createIntrospector (db: Kysely<any>) { return new PostgresIntrospector(db) }
}

/** Whose turn it is on a PGlite session: the tail of the queue of holders. */
const turns = new WeakMap<PGliteLike, { queue: Promise<void> }>()

class PGliteDriver implements Driver {
  private readonly connection: PGliteConnection
  private readonly turn: { queue: Promise<void> }
  private release: (() => void) | undefined

  private readonly pglite: PGliteLike
  private readonly owned: boolean

  constructor (pglite: PGliteLike, owned: boolean) {
    this.pglite = pglite
    this.owned = owned
    this.connection = new PGliteConnection(pglite)
    let turn = turns.get(pglite)
    if (turn === undefined) {
      turn = { queue: Promise.resolve() }
      turns.set(pglite, turn)
    }
    this.turn = turn
  }

  async init (): Promise<void> { await this.pglite.waitReady }

  async acquireConnection (): Promise<DatabaseConnection> {
    const previous = this.turn.queue
    let release!: () => void
    this.turn.queue = new Promise<void>((resolve) => { release = resolve })
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
    if (this.owned && !this.pglite.closed) await this.pglite.close()
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
