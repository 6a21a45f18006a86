import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { loadConfig } from '../../plugins/config.ts'
import { TEST_RUNNERS, TEST_SECRET } from '../helper.ts'
import { pgliteSnapshot } from './pglite-snapshot.ts'

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams
  port: number
  url: string
  /** Everything it printed so far. */
  output: () => string
  exited: Promise<number | null>
}

/**
 * A migrated PGlite data dir of its own for a server process: the suite's snapshot (see
 * pgliteSnapshot) unpacked into a temp dir, for PGLITE_DIR. A server in memory would run initdb
 * and every migration, several seconds of CPU, for a database no test looks at as such.
 */
async function unpackedSnapshot (appRole: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'enclave-server-pglite-'))
  await promisify(execFile)('tar', ['-xf', await pgliteSnapshot(appRole), '-C', dir])
  return dir
}

/**
 * Starts `server.ts` as its own process, as a user would, on a free port; resolves once it
 * listens. The environment's DATABASE_URL / REDIS_URL are passed on unless `env` overrides them.
 * Without a DATABASE_URL it runs on a copy of the suite's migrated PGlite in PGLITE_DIR, unless
 * `env` names PGLITE_DIR (undefined: in memory, as on a bare machine).
 */
export async function startServer (env: Record<string, string | undefined>, teardown: (fn: () => unknown) => void): Promise<ServerProcess> {
  const merged: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    JWT_SECRET: TEST_SECRET,
    PORT: '0',
    DATABASE_URL: process.env.DATABASE_URL,
    DATABASE_ADMIN_URL: process.env.DATABASE_ADMIN_URL,
    REDIS_URL: process.env.REDIS_URL,
    // Its V8 coverage counts with the suite's (c8 sets this); written when the process exits.
    NODE_V8_COVERAGE: process.env.NODE_V8_COVERAGE,
    SHUTDOWN_GRACE_MS: '2000',
    ENCLAVE_RUNNERS: TEST_RUNNERS,
    ...env,
    // The "Server listening" line is logged at info.
    LOG_LEVEL: 'info'
  }
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key]
  const dataDir = merged.DATABASE_URL === undefined && !('PGLITE_DIR' in env)
    ? await unpackedSnapshot(merged.DATABASE_APP_ROLE ?? loadConfig({ JWT_SECRET: TEST_SECRET }).DATABASE_APP_ROLE)
    : undefined
  if (dataDir !== undefined) merged.PGLITE_DIR = dataDir
  // --liftoff-only as in .taprc: PGlite's WebAssembly without V8's optimising tier.
  const child = spawn(process.execPath, ['--no-node-snapshot', '--liftoff-only', 'server.ts'], { env: merged, stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  // Stopped as a deployment stops it (SIGTERM, the graceful shutdown), so it writes its coverage;
  // killed only when it has not exited within a few seconds.
  teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
      await exited
      clearTimeout(timer)
    }
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
  })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      if (match !== null) resolve(Number(match[1]))
    })
    void exited.then((code) => { reject(new Error(`server exited early (${String(code)}): ${output}`)) })
  })
  return { child, port, url: `http://127.0.0.1:${port}`, output: () => output, exited }
}
