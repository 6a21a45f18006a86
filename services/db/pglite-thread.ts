import { Worker } from 'node:worker_threads'

/** What the PGlite dialect needs from PGlite: PGlite itself, or PGliteThread below. */
export interface PGliteLike {
  readonly waitReady: Promise<void>
  readonly closed: boolean
  /** `before` (statements without parameters) runs first, in the same hop. */
  query: <R>(sql: string, params?: unknown[], before?: string) => Promise<{ rows: R[], affectedRows?: number }>
  /** Several statements, simple protocol; the rows of the last one. */
  exec: (sql: string) => Promise<Array<{ rows: unknown[] }>>
  close: () => Promise<void>
}

export type PGliteRequest =
  | { id: number, op: 'query', sql: string, params: unknown[], before?: string }
  | { id: number, op: 'exec', sql: string }
  | { id: number, op: 'dump', path: string }
  | { id: number, op: 'close' }

export type PGliteReply =
  | { id: number, ok: true, rows: unknown[], affectedRows?: number }
  | { id: number, ok: false, error: { message: string, fields: Record<string, unknown> } }

const WORKER = new URL(import.meta.url.endsWith('.ts') ? './pglite-worker.ts' : './pglite-worker.js', import.meta.url)

/**
 * Embedded PGlite in a worker thread. PGlite runs PostgreSQL compiled to WASM synchronously on
 * the thread that calls it: on the main thread every audit write and tool query would stall
 * every other request for its whole duration. Here the main thread only posts the SQL and
 * receives the rows (structured clone keeps Dates, JSON values and bigints).
 *
 * The worker keeps the process alive only while a request is outstanding, as a socket would.
 */
export class PGliteThread implements PGliteLike {
  readonly waitReady: Promise<void>
  private readonly worker: Worker
  private readonly pending = new Map<number, { resolve: (reply: PGliteReply) => void, reject: (err: Error) => void }>()
  private nextId = 1
  private failure: Error | undefined
  private isClosed = false

  /**
   * `startFrom`: a file written by dumpDataDir, for a new data dir to start as a copy of (PGlite's
   * loadDataDir) instead of running initdb, which is most of PGlite's start-up.
   */
  constructor (dataDir: string, startFrom?: string) {
    this.worker = new Worker(WORKER, { workerData: { dataDir, startFrom } })
    this.worker.unref()
    this.worker.on('message', (reply: PGliteReply) => {
      const waiter = this.pending.get(reply.id)
      if (waiter === undefined) return
      this.pending.delete(reply.id)
      if (this.pending.size === 0) this.worker.unref()
      waiter.resolve(reply)
    })
    const fail = (err: Error): void => {
      if (!this.isClosed) this.failure ??= err // an exit after close() is no failure
      this.isClosed = true
      for (const waiter of this.pending.values()) waiter.reject(this.failure ?? err)
      this.pending.clear()
    }
    this.worker.on('error', fail)
    this.worker.on('exit', (code) => { fail(new Error(`The PGlite worker exited (code ${code})`)) })
    // PGlite.create runs in the worker; the first answer means it is open.
    this.waitReady = this.request({ id: 0, op: 'query', sql: 'select 1', params: [] }).then(() => {})
  }

  get closed (): boolean { return this.isClosed }

  async query<R> (sql: string, params: unknown[] = [], before?: string): Promise<{ rows: R[], affectedRows?: number }> {
    const reply = await this.request({ id: 0, op: 'query', sql, params, ...(before === undefined ? {} : { before }) })
    return { rows: reply.rows as R[], ...(reply.affectedRows === undefined ? {} : { affectedRows: reply.affectedRows }) }
  }

  async exec (sql: string): Promise<Array<{ rows: unknown[] }>> {
    return [{ rows: (await this.request({ id: 0, op: 'exec', sql })).rows }]
  }

  /** Writes the whole data dir as one uncompressed tar to `path` (replaced whole, never half written). */
  async dumpDataDir (path: string): Promise<void> {
    await this.request({ id: 0, op: 'dump', path })
  }

  async close (): Promise<void> {
    if (this.isClosed) return
    try {
      await this.request({ id: 0, op: 'close' })
    } finally {
      this.isClosed = true
      await this.worker.terminate()
    }
  }

  private async request (req: PGliteRequest): Promise<Extract<PGliteReply, { ok: true }>> {
    if (this.isClosed) throw this.failure ?? new Error('PGlite is closed')
    const id = this.nextId++
    const reply = await new Promise<PGliteReply>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref()
      this.pending.set(id, { resolve, reject })
      this.worker.postMessage({ ...req, id })
    })
    if (!reply.ok) throw Object.assign(new Error(reply.error.message), reply.error.fields)
    return reply
  }
}
