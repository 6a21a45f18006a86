import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { TEST_SECRET } from '../helper.ts'

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams
  port: number
  url: string
  /** Everything it printed so far. */
  output: () => string
  exited: Promise<number | null>
}

/**
 * Starts `server.ts` as its own process, as a user would, on a free port; resolves once it
 * listens. The environment's DATABASE_URL / REDIS_URL are passed on unless `env` overrides them.
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
    ...env,
    // The "Server listening" line is logged at info.
    LOG_LEVEL: 'info'
  }
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key]
  const child = spawn(process.execPath, ['--no-node-snapshot', 'server.ts'], { env: merged, stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  // Stopped as a deployment stops it (SIGTERM, the graceful shutdown), so it writes its coverage;
  // killed only when it has not exited within a few seconds.
  teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
    await exited
    clearTimeout(timer)
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
