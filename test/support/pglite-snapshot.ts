import { createHash } from 'node:crypto'
import { access, mkdir, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kysely, sql } from 'kysely'
import { PGliteThread } from '../../services/db/pglite-thread.ts'
import { PGliteDialect } from '../../services/db/pglite-dialect.ts'
import { migrateToLatest } from '../../services/db/migrate.ts'

const ROOT = new URL('../../', import.meta.url)

/**
 * Settings of the snapshot itself (postgresql.auto.conf), in its key too. Every app a test
 * builds allocates and clears PGlite's shared buffers at start: initdb's 128 MB cost a sixth of
 * that start's CPU, for databases of a few hundred rows that 16 MB hold many times over.
 */
const SNAPSHOT_SETTINGS = { shared_buffers: '16MB' }

/**
 * What the snapshot is made of: PGlite's version, the migrations and the app role they grant
 * to. Any change to one of them names a new file, so a stale snapshot is never read.
 */
async function snapshotKey (appRole: string): Promise<string> {
  const hash = createHash('sha256').update(appRole).update(JSON.stringify(SNAPSHOT_SETTINGS))
  const pglite = JSON.parse(await readFile(new URL('node_modules/@electric-sql/pglite/package.json', ROOT), 'utf8')) as { version: string }
  hash.update(pglite.version)
  const migrations = (await readdir(new URL('migrations/', ROOT))).sort()
  for (const file of ['services/db/migrate.ts', ...migrations.map((name) => `migrations/${name}`)]) {
    hash.update(file).update(await readFile(new URL(file, ROOT)))
  }
  return hash.digest('hex').slice(0, 24)
}

const made = new Map<string, Promise<string>>()

/**
 * A migrated embedded database, dumped once and kept in the OS temp dir for every test process
 * (and worktree with the same migrations) to start from. initdb was most of an app's start
 * (seconds each, for about a hundred apps a suite), and the migrations the rest of PGlite's;
 * openDatabase still runs the migrator on the copy, which finds nothing to do. The snapshot is
 * made by the same PGliteThread and migrateToLatest the app runs. Two processes that miss at
 * once both make it: each writes its own file and renames it into place, so none reads half.
 */
export async function pgliteSnapshot (appRole: string): Promise<string> {
  let snapshot = made.get(appRole)
  if (snapshot === undefined) {
    snapshot = makeSnapshot(appRole)
    made.set(appRole, snapshot)
    snapshot.catch(() => { made.delete(appRole) })
  }
  return await snapshot
}

async function makeSnapshot (appRole: string): Promise<string> {
  const dir = join(tmpdir(), 'tenant-enclave-pglite')
  const path = join(dir, `${await snapshotKey(appRole)}.tar`)
  if (await access(path).then(() => true, () => false)) return path
  await mkdir(dir, { recursive: true })
  const thread = new PGliteThread('memory://')
  const kysely = new Kysely<any>({ dialect: new PGliteDialect(thread) })
  try {
    await migrateToLatest(kysely, appRole)
    for (const [name, value] of Object.entries(SNAPSHOT_SETTINGS)) await sql.raw(`alter system set ${name} = '${value}'`).execute(kysely)
    // A checkpoint first: a copy dumped without one replays the migrations' WAL at every start.
    await sql`checkpoint`.execute(kysely)
    await thread.dumpDataDir(path)
  } finally {
    await kysely.destroy()
  }
  return path
}
