// The scale curve (not a test): one API process and 1, 2, 3, then 4 worker processes
// (SERVICE_ROLE=worker) on one PostgreSQL and one Redis, fed queued runs at saturation: the
// backlog is kept at 1.5 × the workers' slots, so no worker ever waits for work. For each count
// and each kind of run (CPU-light `return 1`, and tool-heavy: ten data:query calls) it prints
// runs/s, p50/p99 submit-to-final latency (server clock: the rows' submitted_at → finished_at,
// mostly time in the backlog at saturation) and what one run cost each shared component:
//   - CPU ms of the API process, of the worker processes (runner children included), of the
//     PostgreSQL backends serving this database, of redis-server (INFO cpu), and of this client;
//   - Redis commands (INFO commandstats deltas) and PostgreSQL transactions (pg_stat_database
//     xact_commit + xact_rollback deltas, less this script's own polls).
// Needs DATABASE_URL, DATABASE_ADMIN_URL (the owner: it reads the runs' rows) and REDIS_URL.
// Redis's counters are the whole server's: give it a Redis of its own for clean figures. CPU is
// read from /proc (Linux). Knobs: BENCH_SCALE_WORKERS (1,2,3,4), BENCH_SCALE_SECONDS (10),
// BENCH_SCALE_KINDS (light,tools).
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import { signToken } from '../services/tokens.ts'
import { fmt, percentile } from './support.ts'

const { DATABASE_URL, DATABASE_ADMIN_URL, REDIS_URL } = process.env
if (DATABASE_URL === undefined || DATABASE_ADMIN_URL === undefined || REDIS_URL === undefined) {
  throw new Error('bench:scale needs DATABASE_URL, DATABASE_ADMIN_URL and REDIS_URL (a real PostgreSQL and Redis)')
}
const WORKER_COUNTS = (process.env.BENCH_SCALE_WORKERS ?? '1,2,3,4').split(',').map(Number)
const SECONDS = Number(process.env.BENCH_SCALE_SECONDS ?? 10)
const KINDS = (process.env.BENCH_SCALE_KINDS ?? 'light,tools').split(',')
const CONCURRENCY = 16
const POOL_SIZE = 10
const POLL_MS = 100
const TICK_MS = 10
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SCRIPTS: Record<string, string> = {
  light: 'return 1',
  tools: 'for (let i = 0; i < 10; i++) await callTool("data:query", { limit: 1 })\nreturn 1'
}

const secret = randomBytes(32).toString('base64url')
const tenantId = `scale-${randomBytes(4).toString('hex')}`

// ---- processes

interface Service { role: string, child: ChildProcess, url: string, exited: Promise<void> }

// Whatever happens to this script (an error, Ctrl-C), the services it started stop with it: a
// worker left behind would go on taking the next run's jobs from the same queue.
const children = new Set<ChildProcess>()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { process.exit(130) })

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function startService (role: 'api' | 'worker'): Promise<Service> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--no-node-snapshot', 'server.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: process.env.PATH,
      DATABASE_URL,
      DATABASE_ADMIN_URL,
      REDIS_URL,
      JWT_SECRET: secret,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SERVICE_ROLE: role,
      RATE_LIMIT_PER_MINUTE: '100000000',
      DATABASE_POOL_SIZE: String(POOL_SIZE),
      // One tenant drives the bench: let it use the whole pool.
      DATABASE_TENANT_MAX_CONNECTIONS: String(POOL_SIZE),
      EXECUTION_WORKER_CONCURRENCY: String(CONCURRENCY),
      SHUTDOWN_GRACE_MS: '5000'
    }
  })
  children.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => { children.delete(child); resolve() }))
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${role} exited at start (${String(child.exitCode)})`)
    try { if ((await fetch(`${url}/ready`)).ok) break } catch {}
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { role, child, url, exited }
}

async function stopService (service: Service): Promise<void> {
  service.child.kill('SIGTERM')
  await service.exited
}

// ---- CPU from /proc: a process and every descendant (the runners), reaped children included

function statOf (pid: number): { ppid: number, ms: number, childMs: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * TICK_MS, childMs: (Number(f[13]) + Number(f[14])) * TICK_MS }
  } catch {
    return undefined
  }
}

/** CPU ms per pid of `roots` and all their descendants, keyed by the root they descend from. */
function treeCpu (roots: Map<number, string>): Map<number, { root: number, ms: number }> {
  const parent = new Map<number, number>()
  const own = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    const s = statOf(pid)
    if (s === undefined) continue
    parent.set(pid, s.ppid)
    own.set(pid, s.ms + s.childMs)
  }
  const out = new Map<number, { root: number, ms: number }>()
  for (const [pid, ms] of own) {
    let p: number | undefined = pid
    for (let depth = 0; p !== undefined && p > 1 && depth < 16; depth++) {
      if (roots.has(p)) { out.set(pid, { root: p, ms }); break }
      p = parent.get(p)
    }
  }
  return out
}

// ---- PostgreSQL and Redis counters

const admin = new pg.Client({ connectionString: DATABASE_ADMIN_URL })
await admin.connect()
const redis = new Redis(REDIS_URL)
let polls = 0

/** Runs `sql` as the bench tenant (RLS is forced even for the owner), in one transaction. */
async function asTenant<R extends pg.QueryResultRow> (sql: string, params: unknown[] = []): Promise<R[]> {
  polls++
  await admin.query('begin')
  try {
    await admin.query("select set_config('app.tenant_id', $1, true)", [tenantId])
    const rows = (await admin.query<R>(sql, params)).rows
    await admin.query('commit')
    return rows
  } catch (err) {
    await admin.query('rollback')
    throw err
  }
}

async function pgCounters (): Promise<{ xacts: number, backends: number[] }> {
  polls++
  const { rows } = await admin.query<{ xacts: string, pids: number[] }>(`select (select xact_commit + xact_rollback from pg_stat_database where datname = current_database()) as xacts,
    (select array_agg(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()) as pids`)
  return { xacts: Number(rows[0]?.xacts), backends: rows[0]?.pids ?? [] }
}

async function redisCounters (): Promise<{ calls: Map<string, number>, cpuMs: number }> {
  const stats = await redis.info('commandstats')
  const calls = new Map<string, number>()
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1] as string, Number(m[2]))
  const cpu = await redis.info('cpu')
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0)
  return { calls, cpuMs: (field('used_cpu_sys') + field('used_cpu_user')) * 1000 }
}

// ---- driving

const api = await startService('api')
const adminToken = signToken({ tenantId: 'platform', userId: 'bench', permissions: ['admin'] }, { secret })
const setup = await fetch(`${api.url}/admin/tenants/${tenantId}`, {
  method: 'PUT',
  headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
  body: JSON.stringify({ tier: 'enterprise', quotaOverrides: { maxExecutionsPerDay: 1_000_000_000, maxToolCallsPerDay: 1_000_000_000, maxConcurrentExecutions: 1000 } })
})
if (!setup.ok) throw new Error(`tenant setup failed: ${await setup.text()}`)
const headers = { authorization: `Bearer ${signToken({ tenantId, userId: 'bench', permissions: ['tool:data:query', 'tool:data:insert'] }, { secret }, 24 * 3600)}`, 'content-type': 'application/json' }
// A few documents for data:query to find.
for (let i = 0; i < 5; i++) {
  await fetch(`${api.url}/api/execute`, { method: 'POST', headers, body: JSON.stringify({ code: `await callTool("data:insert", { document: { i: ${i} } }); return 1` }) })
}

// Submissions refused with a retryable answer (503: a dependency slow to answer on a loaded
// machine; 429): counted, and the feeder tries again at its next poll.
let refused = 0
async function submit (code: string): Promise<void> {
  const res = await fetch(`${api.url}/api/executions`, { method: 'POST', headers, body: JSON.stringify({ code }) })
  if (res.status === 503 || res.status === 429) { refused++; await res.arrayBuffer(); return }
  if (res.status !== 202) throw new Error(`submission answered ${res.status}: ${await res.text()}`)
  accepted++
  await res.arrayBuffer()
}

// A queued run has no row until it ends (its record lives in Redis until then), so what is
// still queued or running is what was accepted less the rows written since: counting rows by
// status saw none, the feeder kept adding a full backlog every poll, and the next cell began
// with the last one's runs still queued.
let accepted = 0
async function rowCount (): Promise<number> {
  return Number((await asTenant<{ n: string }>('select count(*) as n from executions'))[0]?.n)
}
const rowsBefore = await rowCount()
async function unfinished (): Promise<number> {
  return accepted - (await rowCount() - rowsBefore)
}

/** Keeps `backlog` runs queued or running until `until()`; submissions go 16 at a time. */
async function feed (code: string, backlog: number, until: () => boolean): Promise<void> {
  while (!until()) {
    const missing = backlog - await unfinished()
    for (let sent = 0; sent < missing; sent += 16) await Promise.all(Array.from({ length: Math.min(16, missing - sent) }, async () => { await submit(code) }))
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** Waits until every accepted run has its row: the next cell starts on an empty queue. */
async function drained (): Promise<void> {
  const deadline = Date.now() + 120_000
  while (await unfinished() > 0) {
    if (Date.now() > deadline) throw new Error(`${await unfinished()} runs still unfinished 2 min after their cell: the next cell would measure them`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

interface Row { workers: number, kind: string, runs: number, perSec: number, p50: number, p99: number, cpu: Record<string, number>, redisOps: number, topRedis: string, xacts: number }
const rows: Row[] = []

for (const count of WORKER_COUNTS) {
  const workers = await Promise.all(Array.from({ length: count }, async () => await startService('worker')))
  for (const kind of KINDS) {
    const code = SCRIPTS[kind] as string
    const backlog = Math.ceil(1.5 * count * CONCURRENCY)
    // Warm-up: runners, isolates, the JIT, the pools, at the same saturation.
    const warmEnd = Date.now() + 3000
    await feed(code, backlog, () => Date.now() > warmEnd)

    const roots = new Map<number, string>([[api.child.pid as number, 'api'], ...workers.map((w): [number, string] => [w.child.pid as number, 'workers'])])
    const pgPids = new Map<number, number>()
    const pgCpu = (): number => { let ms = 0; for (const pid of pgPids.keys()) { const s = statOf(pid); if (s !== undefined) ms += s.ms } return ms }
    const notePgPids = async (): Promise<number> => {
      const c = await pgCounters()
      for (const pid of c.backends) if (!pgPids.has(pid)) pgPids.set(pid, statOf(pid)?.ms ?? 0)
      return c.xacts
    }
    const xacts0 = await notePgPids()
    const pgBase = new Map(pgPids)
    const polls0 = polls
    const tree0 = treeCpu(roots)
    const redis0 = await redisCounters()
    const client0 = process.cpuUsage()
    const t0 = Date.now()
    const end = t0 + SECONDS * 1000
    // Backends that appear during the window count from when they were first seen.
    const watcher = (async () => { while (Date.now() < end) { await notePgPids(); await new Promise((resolve) => setTimeout(resolve, 500)) } })()
    await feed(code, backlog, () => Date.now() >= end)
    await watcher
    const t1 = Date.now()
    const tree1 = treeCpu(roots)
    const redis1 = await redisCounters()
    const client1 = process.cpuUsage(client0)
    const xacts1 = await notePgPids()
    const ownPolls = polls - polls0

    const finished = await asTenant<{ ms: number }>(`select extract(epoch from (finished_at - submitted_at)) * 1000 as ms from executions
      where finished_at >= to_timestamp($1 / 1000.0) and finished_at < to_timestamp($2 / 1000.0)`, [t0, t1])
    const runs = finished.length
    const latencies = finished.map((r) => Number(r.ms)).sort((a, b) => a - b)
    const byRole: Record<string, number> = { api: 0, workers: 0 }
    for (const [pid, { root, ms }] of tree1) byRole[roots.get(root) as string]! += ms - (tree0.get(pid)?.ms ?? 0)
    let pgMs = pgCpu()
    for (const ms of pgBase.values()) pgMs -= ms
    for (const [pid, ms] of pgPids) if (!pgBase.has(pid)) pgMs -= ms
    const calls = [...redis1.calls].map(([name, n]): [string, number] => [name, n - (redis0.calls.get(name) ?? 0)]).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])
    const redisOps = calls.reduce((sum, [, n]) => sum + n, 0)
    rows.push({
      workers: count,
      kind,
      runs,
      perSec: runs / ((t1 - t0) / 1000),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      cpu: { api: byRole.api! / runs, workers: byRole.workers! / runs, postgres: pgMs / runs, redis: (redis1.cpuMs - redis0.cpuMs) / runs, client: (client1.user + client1.system) / 1000 / runs },
      redisOps: redisOps / runs,
      topRedis: calls.slice(0, 6).map(([name, n]) => `${name} ${fmt(n / runs, 1)}`).join(', '),
      // This script's polls are one transaction each (two statements in pgCounters count as one).
      xacts: (xacts1 - xacts0 - ownPolls) / runs
    })
    const r = rows.at(-1) as Row
    console.log(`${count} worker${count > 1 ? 's' : ''}, ${kind.padEnd(5)}: ${fmt(r.perSec, 1).padStart(6)} runs/s  p50 ${fmt(r.p50, 0)} ms  p99 ${fmt(r.p99, 0)} ms  ` +
      `CPU ms/run api ${fmt(r.cpu.api!)} workers ${fmt(r.cpu.workers!)} postgres ${fmt(r.cpu.postgres!)} redis ${fmt(r.cpu.redis!)} client ${fmt(r.cpu.client!)}  ` +
      `redis ${fmt(r.redisOps, 1)} cmds/run (${r.topRedis})  postgres ${fmt(r.xacts, 1)} xacts/run`)
    await drained()
  }
  await Promise.all(workers.map(stopService))
}

await stopService(api)
await admin.end()
redis.disconnect()

const cores = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? 0
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
console.log(`\n${refused} submissions refused with 503/429 and sent again.`)
console.log(`${cores} cores, load average now ${load} (a shared machine: other work runs beside this; compare within one run). Backlog kept at 1.5 × ${CONCURRENCY} slots per worker; ${SECONDS} s per cell.`)
for (const kind of KINDS) {
  const curve = rows.filter((r) => r.kind === kind)
  const base = curve[0]
  if (base === undefined) continue
  console.log(`${kind}: runs/s ${curve.map((r) => `${r.workers}w ${fmt(r.perSec, 1)}`).join(', ')}; speed-up at ${curve.at(-1)!.workers} workers ${fmt(curve.at(-1)!.perSec / base.perSec)}× (target: linear until the machine's cores are busy, then flat)`)
}
