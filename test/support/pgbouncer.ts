import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { freePort } from './free-port.ts'

/** A PgBouncer this test started, and the URL that logs in through it as the given user. */
export interface Pooler {
  url: string
  port: number
  stop: () => Promise<void>
}

const CANDIDATES = [process.env.PGBOUNCER, '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].filter((p): p is string => p !== undefined && p !== '')

/** The pgbouncer binary, or a failure that says how to get one (Debian's package). */
export function pgbouncerBinary (): string {
  for (const candidate of CANDIDATES) {
    try { accessSync(candidate, constants.X_OK); return candidate } catch {}
  }
  throw new Error(`pgbouncer not found (looked at ${CANDIDATES.join(', ')}): apt-get install pgbouncer, or set PGBOUNCER to its path. The external pass needs it.`)
}

/**
 * Starts PgBouncer in transaction pooling mode on a free loopback port in front of the server
 * `serverUrl` names (its host, port and database), letting in the user and password of
 * `loginUrl` (SCRAM towards the server from the plain password in its auth file). Runs in the
 * foreground as a child of this process, so it ends with the test; as root it drops to `nobody`
 * (PgBouncer refuses to run as root).
 */
export async function startPgbouncer (serverUrl: string, loginUrl: string, poolSize: number): Promise<Pooler> {
  const binary = pgbouncerBinary()
  const server = new URL(serverUrl)
  const login = new URL(loginUrl)
  const database = decodeURIComponent(server.pathname.slice(1))
  const user = decodeURIComponent(login.username)
  const password = decodeURIComponent(login.password)
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-pgbouncer-'))
  chmodSync(dir, 0o755)
  const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`
  writeFileSync(path.join(dir, 'userlist.txt'), `${quote(user)} ${quote(password)}\n`, { mode: 0o644 })
  writeFileSync(path.join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `${database} = host=${server.hostname} port=${server.port || '5432'} dbname=${database}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    'pool_mode = transaction',
    `default_pool_size = ${poolSize}`,
    'min_pool_size = 0',
    'reserve_pool_size = 0',
    'max_client_conn = 200',
    'log_connections = 0',
    'log_disconnections = 0',
    ''
  ].join('\n'), { mode: 0o644 })
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), path.join(dir, 'pgbouncer.ini')]
  // Through a shell that stops PgBouncer when its stdin (a pipe from this process) closes: at
  // stop(), and also when this process dies without a teardown (a test runner's timeout kills
  // it), so no pooler outlives its test.
  // Its directory goes with it.
  const child: ChildProcess = spawn('sh', ['-c', '"$0" "$@" </dev/null & p=$!; read _; kill -TERM $p; wait $p; rm -rf "$POOLER_DIR"', binary, ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, POOLER_DIR: dir }
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const url = `postgres://${login.username}:${login.password}@127.0.0.1:${port}/${server.pathname.slice(1)}`
  const stop = async (): Promise<void> => {
    child.stdin?.end()
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`pgbouncer exited at start (${String(child.exitCode)}): ${stderr}`)
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.query('select 1')
      await client.end()
      return { url, port, stop }
    } catch (err) {
      await client.end().catch(() => {})
      if (i >= 100) { await stop(); throw new Error(`pgbouncer on ${port} does not let ${user} in: ${(err as Error).message}\n${stderr}`) }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
