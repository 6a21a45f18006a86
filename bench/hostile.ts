// npm run bench:hostile: a bystander tenant's latency, alone and beside each attack of issue 10,
// from the same run. The bystander runs a trivial script and a script of 20 data:query calls, one
// at a time over loopback HTTP; each attacker runs its attack from as many connections as its
// tier allows. Prints p50/p99 and the ratio to the bystander alone. Target: every ratio <= 2.
// `-- --quick` runs each phase briefly (CI checks that it runs, not the figures).
// The upstream flood (issue 28): an enterprise bystander calls a fast endpoint of a platform
// tool's upstream, alone and beside 4 starter tenants flooding a slow endpoint of the same
// origin. `-- --upstream-only` runs that row alone; `-- --uncapped` lifts the per-tenant and
// per-tier caps (to show what they prevent). `-- --real` runs on DATABASE_URL and REDIS_URL.
// The database flood (issue 28, bench/database-flood.ts): an enterprise bystander's one-row
// data:query beside four free tenants scanning; `-- --database-only` runs that row alone
// (`--uncapped` lifts the tiers' shares of the pool and of the database's cores too).
// The check floods (issue 28, bench/check-flood.ts): a bystander's trivial run beside a tenant
// flooding /api/execute/check and /mcp's check_script; `-- --check-only` runs those rows alone.
import { createServer } from 'node:http'
import { loadavg } from 'node:os'
import type { AddressInfo } from 'node:net'
import { closedLoop, fmt, startBenchApp } from './support.ts'
import { signToken } from '../services/tokens.ts'
import { databaseFlood } from './database-flood.ts'
import { checkFloods } from './check-flood.ts'

const quick = process.argv.includes('--quick')
const checkOnly = process.argv.includes('--check-only')
const databaseOnly = process.argv.includes('--database-only')
const upstreamOnly = process.argv.includes('--upstream-only') || databaseOnly || checkOnly
const uncapped = process.argv.includes('--uncapped')
const SECONDS = Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 5))
const SLOW_MS = quick ? 500 : 2000

// The upstream flood: starter's concurrent runs, each with TOOL_MAX_CONCURRENT_PER_RUN calls.
const FLOOD_RUNS = 5
const FLOOD_CALLS = 4
const BYSTANDER_CALLS = 5

const ATTACKS: Array<{ name: string, script: string, connections: number, tier: string, timeoutMs?: number, setup?: string }> = [
  { name: 'memory: resizable ArrayBuffer + huge strings', connections: 2, tier: 'free', script: "try { const b = new ArrayBuffer(1, {maxByteLength: 2**32}); b.resize(2**30) } catch (e) {}\nreturn 'x'.repeat(2**28).indexOf('y')" },
  { name: 'memory bomb (string doubling)', connections: 2, tier: 'free', script: 'let s = "xxxxxxxxxxxxxxxx"\nfor (;;) { s += s; s.indexOf("y") }' },
  { name: 'work after TIMEOUT (sort of long strings)', connections: 2, tier: 'free', timeoutMs: 1000, script: "const big = 'a'.repeat(2**20); const a = []; const N = 100000; for (let i = 0; i < N; i++) a.push(big.slice((i*7919) % N)); a.sort()" },
  { name: 'CPU hog: 60 busy loops', connections: 60, tier: 'enterprise', timeoutMs: 12_000, script: 'while (true) {}' },
  { name: 'big tool results: 8 parallel queries', connections: 2, tier: 'enterprise', script: "await Promise.all(Array.from({ length: 8 }, () => callTool('data:query', { collection: 'big', limit: 200 }).catch((e) => e.code)))", setup: 'big' },
  { name: 'tool flood: 20 parallel queries per run', connections: 8, tier: 'enterprise', script: "await Promise.all(Array.from({ length: 20 }, () => callTool('data:query', { limit: 10 })))" }
]

// The platform's API: /slow answers after SLOW_MS, /fast at once.
const upstreamServer = createServer((req, res) => {
  const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}') }
  if (req.url === '/slow') setTimeout(answer, SLOW_MS)
  else answer()
})
await new Promise<void>((resolve) => upstreamServer.listen(0, '127.0.0.1', resolve))
const origin = `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`
const bench = await startBenchApp({
  TOOL_UPSTREAMS: origin,
  ...(uncapped ? { TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT: '1024', TOOL_UPSTREAM_STARTER_SHARE_PERCENT: '100', TOOL_UPSTREAM_FREE_SHARE_PERCENT: '100', DATABASE_FREE_SHARE_PERCENT: '100', DATABASE_STARTER_SHARE_PERCENT: '100', DATABASE_CPU_CORES: '1024' } : {})
})
const bystander = await bench.tenant('bench-bystander', {}, 'starter')
const TRIVIAL = 'return 1 + 1'
const TOOLS = 'let n = 0\nfor (let i = 0; i < 20; i++) n += (await callTool("data:query", { limit: 5 })).length\nreturn n'

async function execute (headers: Record<string, string>, code: string, timeoutMs?: number): Promise<number> {
  const res = await fetch(`${bench.url}/api/execute`, { method: 'POST', headers, body: JSON.stringify(timeoutMs === undefined ? { code } : { code, timeoutMs }) })
  await res.arrayBuffer()
  return res.status
}
const measure = async (code: string): Promise<{ p50: number, p99: number }> => await closedLoop(1, SECONDS, async () => {
  const status = await execute(bystander, code)
  if (status !== 200) throw new Error(`the bystander got HTTP ${status}`)
})

const NOT_RUN = { p50: Number.NaN, p99: Number.NaN }
if (!upstreamOnly) {
  await execute(bystander, "for (let i = 0; i < 5; i++) await callTool('data:insert', { document: { i } })")
  await closedLoop(1, 1, async () => { await execute(bystander, TOOLS) }) // warm up
}
const alone = upstreamOnly ? { trivial: NOT_RUN, tools: NOT_RUN } : { trivial: await measure(TRIVIAL), tools: await measure(TOOLS) }

const rows: string[] = []
for (const attack of upstreamOnly ? [] : ATTACKS) {
  const attacker = await bench.tenant(`bench-attacker-${rows.length}`, { maxConcurrentExecutions: attack.connections }, attack.tier)
  if (attack.setup === 'big') {
    // 40 documents of ~1 MB each, inserted a few at a time.
    for (let i = 0; i < 8; i++) await execute(attacker, "const blob = 'y'.repeat(2**20 - 64)\nfor (let i = 0; i < 5; i++) await callTool('data:insert', { collection: 'big', document: { blob } })", 60_000)
  }
  // An object, not a `let`: the loops below read what the main flow sets after its awaits.
  const phase = { stop: false }
  let attackRuns = 0
  const running = Promise.all(Array.from({ length: attack.connections }, async () => {
    while (!phase.stop) { await execute(attacker, attack.script, attack.timeoutMs); attackRuns++ }
  }))
  await new Promise((resolve) => setTimeout(resolve, 500))
  const trivial = await measure(TRIVIAL)
  const tools = await measure(TOOLS)
  phase.stop = true
  await running
  const r1 = trivial.p99 / alone.trivial.p99
  const r2 = tools.p99 / alone.tools.p99
  rows.push(`${attack.name.padEnd(44)} ${fmt(trivial.p50).padStart(7)} ${fmt(trivial.p99).padStart(7)} ${fmt(r1).padStart(6)} ${fmt(tools.p50).padStart(8)} ${fmt(tools.p99).padStart(8)} ${fmt(r2).padStart(6)}  ${attackRuns} attack runs`)
}

const checks = databaseOnly || (upstreamOnly && !checkOnly) ? undefined : await checkFloods(bench, execute, SECONDS)
const flood = databaseOnly || checkOnly ? undefined : await upstreamFlood()
const dbFlood = checkOnly ? undefined : await databaseFlood(bench, execute, SECONDS)

if (!upstreamOnly) {
  console.log(`hostile-tenant benchmark: ${SECONDS} s per phase; bystander = starter tier, one request at a time`)
  console.log(`${'beside'.padEnd(44)} trivial: p50    p99  ratio  20 tools: p50     p99  ratio`)
  console.log(`${'(alone)'.padEnd(44)} ${fmt(alone.trivial.p50).padStart(7)} ${fmt(alone.trivial.p99).padStart(7)} ${'1.00'.padStart(6)} ${fmt(alone.tools.p50).padStart(8)} ${fmt(alone.tools.p99).padStart(8)} ${'1.00'.padStart(6)}`)
  for (const row of rows) console.log(row)
  console.log('\nratio = bystander p99 beside the attack / bystander p99 alone; target <= 2.00 for every row\n')
}
if (checks !== undefined) {
  console.log('check floods: an enterprise tenant per row (4 checks in flight), 8 connections back to back; bystander = starter, a trivial run, one at a time')
  console.log(`${''.padEnd(52)}     p50     p99  ratio  loop p99`)
  console.log(`${'(alone)'.padEnd(52)} ${fmt(checks.alone.p50).padStart(7)} ${fmt(checks.alone.p99).padStart(7)} ${'1.00'.padStart(6)} ${fmt(checks.alone.loopP99).padStart(9)}`)
  for (const row of checks.rows) console.log(`${row.name.padEnd(52)} ${fmt(row.beside.p50).padStart(7)} ${fmt(row.beside.p99).padStart(7)} ${fmt(row.beside.p99 / checks.alone.p99).padStart(6)} ${fmt(row.beside.loopP99).padStart(9)}  ${row.checks} checks answered, ${row.refused} refused (429)`)
  console.log(`ratio = bystander p99 beside the flood / alone; target <= 2.00; loop p99 = the service's event-loop delay while measured (ms); load average ${loadavg().map((l) => l.toFixed(2)).join(', ')}\n`)
}
if (flood !== undefined) {
  console.log(`upstream flood${uncapped ? ' (caps lifted: --uncapped)' : ''}: 4 starter tenants x ${FLOOD_RUNS} runs x ${FLOOD_CALLS} parallel calls to a ${SLOW_MS} ms endpoint; bystander = enterprise, ${BYSTANDER_CALLS} calls to a fast endpoint of the same origin per run, one run at a time`)
  console.log(`${''.padEnd(44)}     p50     p99  ratio`)
  console.log(`${'(alone)'.padEnd(44)} ${fmt(flood.alone.p50).padStart(7)} ${fmt(flood.alone.p99).padStart(7)} ${'1.00'.padStart(6)}`)
  console.log(`${'beside the upstream flood'.padEnd(44)} ${fmt(flood.beside.p50).padStart(7)} ${fmt(flood.beside.p99).padStart(7)} ${fmt(flood.beside.p99 / flood.alone.p99).padStart(6)}  ${flood.answered} slow calls answered, ${flood.refused} refused at a cap`)
  console.log('ratio = bystander p99 beside the flood / alone; target <= 2.00')
}
if (dbFlood !== undefined) {
  console.log(`\ndatabase flood${uncapped ? ' (tier shares lifted: --uncapped)' : ''}: 4 free tenants x 3 runs x 4 parallel scans; bystander = enterprise, a one-row data:query per run, one run at a time`)
  console.log(`${''.padEnd(44)}     p50     p99  ratio`)
  console.log(`${'(alone)'.padEnd(44)} ${fmt(dbFlood.alone.p50).padStart(7)} ${fmt(dbFlood.alone.p99).padStart(7)} ${'1.00'.padStart(6)}`)
  console.log(`${'beside the database flood'.padEnd(44)} ${fmt(dbFlood.beside.p50).padStart(7)} ${fmt(dbFlood.beside.p99).padStart(7)} ${fmt(dbFlood.beside.p99 / dbFlood.alone.p99).padStart(6)}  ${dbFlood.floodCalls} flood calls answered, ${dbFlood.busy} told busy, ${dbFlood.failed} failed`)
  console.log('ratio = bystander p99 beside the flood / alone; target <= 2.00 (on real PostgreSQL: -- --real)')
}
await bench.fastify.close()
upstreamServer.closeAllConnections()
upstreamServer.close()

async function upstreamFlood (): Promise<{ alone: { p50: number, p99: number }, beside: { p50: number, p99: number }, answered: number, refused: number }> {
  const admin = { authorization: `Bearer ${signToken({ tenantId: 'platform', userId: 'bench', permissions: ['admin'] }, { secret: bench.secret })}` }
  for (const [name, path, timeoutMs] of [['up:slow', '/slow', 20_000], ['up:fast', '/fast', 5000]] as const) {
    const put = await bench.fastify.inject({ method: 'PUT', url: `/admin/tools/${name}`, headers: admin, payload: { description: name, argsSchema: { type: 'object' }, http: { method: 'GET', url: `${origin}${path}`, timeoutMs }, defaultEnabled: true } })
    if (put.statusCode !== 200) throw new Error(`tool setup failed: ${put.body}`)
  }
  const withTools = async (tenantId: string, overrides: Record<string, number>, tier: string): Promise<Record<string, string>> => {
    await bench.tenant(tenantId, overrides, tier)
    return { authorization: `Bearer ${signToken({ tenantId, userId: 'bench', permissions: ['tool:up:slow', 'tool:up:fast'] }, { secret: bench.secret }, 24 * 3600)}`, 'content-type': 'application/json' }
  }
  const bystanderHeaders = await withTools('bench-up-bystander', {}, 'enterprise')
  const script = `for (let i = 0; i < ${BYSTANDER_CALLS}; i++) await callTool('up:fast', {})\nreturn 1`
  const measureFast = async (): Promise<{ p50: number, p99: number }> => await closedLoop(1, SECONDS, async () => {
    const status = await execute(bystanderHeaders, script)
    if (status !== 200) throw new Error(`the bystander got HTTP ${status}`)
  })
  await closedLoop(1, 1, async () => { await execute(bystanderHeaders, script) }) // warm up
  const aloneFast = await measureFast()
  const attackers = await Promise.all([0, 1, 2, 3].map(async (i) => await withTools(`bench-up-flooder-${i}`, {}, 'starter')))
  const floodScript = `const out = await Promise.all(Array.from({ length: ${FLOOD_CALLS} }, () => callTool('up:slow', {}).then(() => 'ok', (e) => e.message.includes('in flight') || e.message.includes('connections to') ? 'refused' : 'failed')))\nreturn out`
  const phase = { stop: false }
  let answered = 0
  let refused = 0
  const running = Promise.all(attackers.flatMap((headers) => Array.from({ length: FLOOD_RUNS }, async () => {
    while (!phase.stop) {
      const res = await fetch(`${bench.url}/api/execute`, { method: 'POST', headers, body: JSON.stringify({ code: floodScript }) })
      const body = await res.json() as { value?: string[] }
      for (const outcome of body.value ?? []) { if (outcome === 'ok') answered++; else if (outcome === 'refused') refused++ }
    }
  })))
  await new Promise((resolve) => setTimeout(resolve, 500))
  const besideFast = await measureFast()
  phase.stop = true
  await running
  return { alone: aloneFast, beside: besideFast, answered, refused }
}
