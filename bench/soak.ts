// npm run bench:soak (add `-- --real` for DATABASE_URL + REDIS_URL, `-- --scale=0.05` for a
// shorter run): 100,000 trivial executions and 20,000 tool-heavy ones (5 data:query calls each)
// across 50 tenants, 8 in flight, through the app's whole request path (inject: no sockets, so
// the figures are the service's own). RSS of the service and of each runner is sampled every
// fiftieth of the work; growth is measured from the end of warm-up (see warmDone below).
// Also: RSS of an idle runner, and what one more warm isolate adds to a runner.
import { readdirSync, readFileSync } from 'node:fs'
import { backendLabel, fmt, startBenchApp } from './support.ts'

const scaleArg = process.argv.find((a) => a.startsWith('--scale='))
const SCALE = scaleArg === undefined ? 1 : Number(scaleArg.slice('--scale='.length))
const TRIVIAL = Math.round(100_000 * SCALE)
const TOOLS = Math.round(20_000 * SCALE)
const TENANTS = 50
const IN_FLIGHT = 8
const TOOL_CODE = "let n = 0; for (let i = 0; i < 5; i++) n += (await callTool('data:query', { limit: 2 })).length; return n"

function rssMB (pid: number | 'self' | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
    return kb / 1024
  } catch {
    return Number.NaN
  }
}

// A runner under bubblewrap is a small tree (bwrap, then node): count the whole tree.
function treeRssMB (pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  const parents = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  let total = 0
  const stack = [pid]
  while (stack.length > 0) {
    const p = stack.pop() as number
    total += rssMB(p) || 0
    for (const [child, parent] of parents) if (parent === p) stack.push(child)
  }
  return total
}

const bench = await startBenchApp()
const enclave = bench.fastify.enclave
const idleRunners = enclave.runnerPids().map(treeRssMB)

const run = Date.now().toString(36)
const tenants = await Promise.all(Array.from({ length: TENANTS }, async (_, i) => await bench.tenant(`soak-${run}-${i}`, { maxConcurrentExecutions: 100, maxToolCallsPerExecution: 100 })))
// Documents for data:query to find, in every tenant.
for (const headers of tenants) await bench.fastify.inject({ method: 'POST', url: '/api/execute', headers, payload: { code: "for (let i = 0; i < 3; i++) await callTool('data:insert', { document: { i } })" } })

// What a warm isolate costs: runners' RSS before and after 30 new keys each ran once (their
// isolates stay in the pool, idle and warm).
const before = enclave.runnerPids().reduce<number>((sum, pid) => sum + treeRssMB(pid), 0)
for (let i = 0; i < 30; i++) await enclave.run('return 1', { isolateKey: `soak-isolate-${i}` })
const perIsolate = (enclave.runnerPids().reduce<number>((sum, pid) => sum + treeRssMB(pid), 0) - before) / 30

// The work, interleaved: one tool-heavy run every TRIVIAL/TOOLS trivial ones.
const total = TRIVIAL + TOOLS
const toolEvery = Math.max(1, Math.round(total / Math.max(1, TOOLS)))
let next = 0
let failures = 0
const samples: Array<{ done: number, service: number, runners: number[] }> = []
const sample = (done: number): void => { samples.push({ done, service: rssMB('self'), runners: enclave.runnerPids().map(treeRssMB) }) }
sample(0)
const t0 = performance.now()
const SAMPLES = 50
let nextSample = Math.ceil(total / SAMPLES)
await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
  while (next < total) {
    const i = next++
    const code = i % toolEvery === 0 ? TOOL_CODE : 'return 1 + 1'
    const res = await bench.fastify.inject({ method: 'POST', url: '/api/execute', headers: tenants[i % TENANTS], payload: { code } })
    if (res.statusCode !== 200 || res.json().success !== true) failures++
    if (i + 1 >= nextSample) { nextSample += Math.ceil(total / SAMPLES); sample(i + 1) }
  }
}))
const seconds = (performance.now() - t0) / 1000
sample(total)

console.log(`soak: ${TRIVIAL} trivial + ${TOOLS} tool-heavy executions, ${TENANTS} tenants, ${IN_FLIGHT} in flight, ${backendLabel()}, Node ${process.version}`)
console.log(`${fmt(total / seconds, 0)} executions/s over ${fmt(seconds, 0)} s, ${failures} failed\n`)
console.log('done      service RSS MB   runners RSS MB')
for (const [k, s] of samples.entries()) if (k % 5 === 0 || k === samples.length - 1) console.log(`${String(s.done).padStart(7)}   ${fmt(s.service, 1).padStart(14)}   ${s.runners.map((r) => fmt(r, 1)).join(' ')}`)
// Warm-up: the first tenth of the work, and at least half of it (up to 10,000 executions) on a
// short run: the isolate pools of 50 tenants take a few thousand runs to fill.
const warmDone = Math.max(total / 10, Math.min(total / 2, 10_000))
const warm = samples.find((s) => s.done >= warmDone) ?? samples[1] as (typeof samples)[number]
const last = samples[samples.length - 1] as (typeof samples)[number]
const growth = (a: number, b: number): number => (b - a) / a
const serviceGrowth = growth(warm.service, last.service)
console.log(`\nRSS growth after warm-up, one sample to another (at ${warm.done} → end): service ${fmt(serviceGrowth * 100, 1)}%` +
  last.runners.map((r, i) => `, runner ${i} ${fmt(growth(warm.runners[i] ?? Number.NaN, r) * 100, 1)}%`).join(''))
// A runner's RSS is a sawtooth (isolates fill their heaps, are disposed, and the memory goes back
// to the system), swinging by more than 10% between two samples: one sample against another says
// where each fell in its swing. Growth is the median of the last fifth of the samples after
// warm-up against the median of the first fifth.
const after = samples.filter((s) => s.done >= warm.done)
const fifth = Math.max(3, Math.floor(after.length / 5))
const median = (xs: number[]): number => { const v = [...xs].sort((a, b) => a - b); return v[Math.floor(v.length / 2)] ?? Number.NaN }
const windowGrowth = (of: (s: (typeof samples)[number]) => number): number => growth(median(after.slice(0, fifth).map(of)), median(after.slice(-fifth).map(of)))
const windowed = [windowGrowth((s) => s.service), ...last.runners.map((_, i) => windowGrowth((s) => s.runners[i] ?? Number.NaN))]
console.log(`RSS growth after warm-up, median of the last ${fifth} samples against the first ${fifth}: service ${fmt((windowed[0] ?? Number.NaN) * 100, 1)}%` +
  windowed.slice(1).map((g, i) => `, runner ${i} ${fmt(g * 100, 1)}%`).join('') + `   target <= 10% each: ${windowed.every((g) => g <= 0.1) ? 'met' : 'MISSED'}`)
console.log(`idle runner RSS: ${idleRunners.map((r) => fmt(r, 1)).join(', ')} MB; one more warm isolate: ${fmt(perIsolate, 2)} MB`)
await bench.fastify.close()
