// Entry of the worker thread that holds embedded PGlite (see pglite-thread.ts). PostgreSQL's WASM
// runs synchronously inside each call, so here it stalls only this thread, never the API's event loop.
import { readFile, rename, writeFile } from 'node:fs/promises'
import { parentPort, workerData } from 'node:worker_threads'
import { PGlite } from '@electric-sql/pglite'
import type { PGliteReply, PGliteRequest } from './pglite-thread.ts'

const port = parentPort
if (port === null) throw new Error('pglite-worker.ts runs only as a worker thread')

const { dataDir, startFrom } = workerData as { dataDir: string, startFrom?: string }
// A data dir dumped earlier (dumpDataDir below) saves initdb, most of PGlite's start.
const ready = startFrom === undefined
  ? PGlite.create(dataDir)
  : readFile(startFrom).then(async (tar) => await PGlite.create(dataDir, { loadDataDir: new Blob([tar]) }))

// Fields of a PostgreSQL error the app may read (code, constraint...); the rest stays here.
const ERROR_FIELDS = ['code', 'severity', 'detail', 'hint', 'schema', 'table', 'column', 'constraint', 'position'] as const

function errorOf (err: unknown): NonNullable<Extract<PGliteReply, { ok: false }>['error']> {
  const e = err as Record<string, unknown>
  const fields: Record<string, unknown> = {}
  for (const name of ERROR_FIELDS) if (typeof e?.[name] === 'string') fields[name] = e[name]
  return { message: err instanceof Error ? err.message : String(err), fields }
}

port.on('message', (req: PGliteRequest) => {
  void handle(req).then((reply) => { port.postMessage(reply) })
})

async function handle (req: PGliteRequest): Promise<PGliteReply> {
  try {
    const db = await ready
    if (req.op === 'query') {
      if (req.before !== undefined) await db.exec(req.before)
      const result = await db.query(req.sql, req.params)
      return { id: req.id, ok: true, rows: result.rows, affectedRows: result.affectedRows }
    }
    if (req.op === 'exec') {
      const results = await db.exec(req.sql)
      return { id: req.id, ok: true, rows: results[results.length - 1]?.rows ?? [] }
    }
    if (req.op === 'dump') {
      // Written beside its place and renamed there: a reader never sees half a file.
      const partial = `${req.path}.${process.pid}.${Date.now()}.partial`
      await writeFile(partial, Buffer.from(await (await db.dumpDataDir('none')).arrayBuffer()))
      await rename(partial, req.path)
      return { id: req.id, ok: true, rows: [] }
    }
    if (!db.closed) await db.close()
    return { id: req.id, ok: true, rows: [] }
  } catch (err) {
    return { id: req.id, ok: false, error: errorOf(err) }
  }
}
