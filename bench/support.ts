// Shared by the HTTP and noisy-neighbour benchmarks: the app on its embedded defaults, in this
// process, listening on a free loopback port, with tenants whose quotas never get in the way.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import type { Result } from 'autocannon'
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions } from '../app.ts'
import { loadConfig } from '../plugins/config.ts'
import { signToken } from '../services/tokens.ts'

export interface BenchApp {
  fastify: FastifyInstance
  url: string
  secret: string
  tenant: (tenantId: string, quotaOverrides?: Record<string, number>, tier?: string) => Promise<Record<string, string>>
}

/**
 * `--real` on the command line (or BENCH_REAL=1, which reaches every script of `npm run bench`): the app on DATABASE_URL (+ DATABASE_ADMIN_URL) and REDIS_URL,
 * which must be set; otherwise embedded PGlite and the in-process store.
 */
export const REAL = process.argv.includes('--real') || process.env.BENCH_REAL === '1'

export function backendLabel (): string {
  return REAL ? 'real PostgreSQL + Redis' : 'embedded PGlite (worker thread) + in-process store'
}

function backendEnv (): Record<string, string> {
  if (!REAL) return {}
  const { DATABASE_URL, DATABASE_ADMIN_URL, REDIS_URL } = process.env
  if (DATABASE_URL === undefined || REDIS_URL === undefined) throw new Error('--real needs DATABASE_URL and REDIS_URL')
  return { DATABASE_URL, REDIS_URL, ...(DATABASE_ADMIN_URL === undefined ? {} : { DATABASE_ADMIN_URL }) }
}

/** `env` adds settings (e.g. TOOL_UPSTREAMS for the platform tools benchmark). */
export async function startBenchApp (env: Record<string, string> = {}): Promise<BenchApp> {
  const secret = randomBytes(32).toString('base64url')
  const config = loadConfig({ JWT_SECRET: secret, LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '100000000', PORT: '0', ...backendEnv(), ...env })
  const fastify = Fastify(serverOptions(config))
  await fastify.register(app, { config })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const { port } = fastify.server.address() as AddressInfo
  const adminToken = signToken({ tenantId: 'platform', userId: 'bench', permissions: ['admin'] }, { secret })
  return {
    fastify,
    url: `http://127.0.0.1:${port}`,
    secret,
    tenant: async (tenantId, quotaOverrides = {}, tier = 'enterprise') => {
      const res = await fastify.inject({
        method: 'PUT',
        url: `/admin/tenants/${tenantId}`,
        headers: { authorization: `Bearer ${adminToken}` },
        payload: { tier, quotaOverrides: { maxExecutionsPerDay: 1_000_000_000, maxToolCallsPerDay: 1_000_000_000, ...quotaOverrides } }
      })
      if (res.statusCode !== 200) throw new Error(`tenant setup failed: ${res.body}`)
      const token = signToken({ tenantId, userId: 'bench', permissions: ['tool:data:query', 'tool:data:insert'] }, { secret }, 24 * 3600)
      return { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    }
  }
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

export const fmt = (n: number, digits = 2): string => Number.isFinite(n) ? n.toFixed(digits) : 'n/a'

/**
 * Runs `work` with `inFlight` loops for `seconds`; returns per-op latencies (ms) and ops/s. As a
 * load generator counts, ops/s is the operations completed within the window over its length
 * (those still running at its end are waited for but not counted).
 */
export async function closedLoop (inFlight: number, seconds: number, work: () => Promise<void>): Promise<{ opsPerSec: number, p50: number, p99: number }> {
  const latencies: number[] = []
  const end = performance.now() + seconds * 1000
  let completed = 0
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      await work()
      const t1 = performance.now()
      latencies.push(t1 - t0)
      if (t1 <= end) completed++
    }
  }))
  latencies.sort((a, b) => a - b)
  return { opsPerSec: completed / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

/** Event-loop delay of this process while `work` runs: p50/p99/max in ms (perf_hooks histogram). */
export async function withLoopDelay<T> (work: () => Promise<T>): Promise<{ result: T, p50: number, p99: number, max: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 5 })
  histogram.enable()
  try {
    const result = await work()
    return { result, p50: histogram.percentile(50) / 1e6, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 }
  } finally {
    histogram.disable()
  }
}

// The load generator runs in its own process, as a real client would, so its work does not
// share the server's event loop.
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
export async function autocannon (options: { url: string, headers: Record<string, string>, body: string, connections: number, duration: number, warmupSeconds?: number }): Promise<Result & { warmupRequests: number }> {
  const args = [AUTOCANNON, '--json', '-m', 'POST', '-c', String(options.connections), '-d', String(options.duration), '-b', options.body]
  // A warm-up inside the same client process: a fresh client's first second is slower (its JIT is
  // cold), which would count against short measured runs. It prints its own line before the run's.
  if (options.warmupSeconds !== undefined) args.push('--warmup', '[', '-c', String(options.connections), '-d', String(options.warmupSeconds), ']')
  for (const [name, value] of Object.entries(options.headers)) args.push('-H', `${name}=${value}`)
  const { stdout } = await promisify(execFile)(process.execPath, [...args, options.url], { maxBuffer: 16 * 1024 * 1024 })
  const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as Result)
  const result = lines.at(-1) as Result
  return Object.assign(result, { warmupRequests: lines.length > 1 ? (lines[0] as Result).requests.total : 0 })
}

// CPU accounting from /proc (Linux): where a request's CPU goes, by thread and process. Clock
// ticks are 1/100 s, so a cell must run long enough (seconds) for per-request figures to mean much.
const TICK_MS = 10
function statTimes (path: string): { name: string, user: number, system: number, childUser: number, childSystem: number } | undefined {
  try {
    const stat = readFileSync(path, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), user: Number(fields[11]) * TICK_MS, system: Number(fields[12]) * TICK_MS, childUser: Number(fields[13]) * TICK_MS, childSystem: Number(fields[14]) * TICK_MS }
  } catch {
    return undefined
  }
}

/** Busy CPU ms of the whole machine so far (every process; /proc/stat less idle and iowait); undefined off Linux. */
export function machineBusyMs (): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    return (fields.reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!) * TICK_MS
  } catch {
    return undefined
  }
}

/** CPU ms used so far: this process's threads by name, finished children (the load generator), and the given processes. */
export function cpuSnapshot (pids: Array<number | undefined>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const tid of readdirSync('/proc/self/task')) {
    const t = statTimes(`/proc/self/task/${tid}/stat`)
    if (t === undefined) continue
    // libuv's pool threads and V8's helpers come in numbered families: one line per family.
    const name = t.name === 'MainThread' || t.name === 'node' ? 'service main thread' : `service ${t.name.replace(/[\s\d]+$/, '')} threads`
    out[name] = (out[name] ?? 0) + t.user + t.system
  }
  const self = statTimes('/proc/self/stat')
  if (self !== undefined) out['client process (its start-up included)'] = self.childUser + self.childSystem
  out.runners = 0
  for (const pid of pids) {
    if (pid === undefined) continue
    const t = statTimes(`/proc/${pid}/stat`)
    if (t !== undefined) out.runners += t.user + t.system + t.childUser + t.childSystem
  }
  return out
}

/** Per-operation CPU ms between two snapshots, largest first. */
export function cpuPerOp (before: Record<string, number>, after: Record<string, number>, ops: number): Array<[string, number]> {
  return Object.entries(after)
    .map(([name, ms]): [string, number] => [name, (ms - (before[name] ?? 0)) / ops])
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
}
