// npm run bench:hostile: a bystander tenant's latency, alone and beside each attack of issue 10,
// from the same run. The bystander runs a trivial script and a script of 20 data:query calls, one
// at a time over loopback HTTP; each attacker runs its attack from as many connections as its
// tier allows. Prints p50/p99 and the ratio to the bystander alone. Target: every ratio <= 2.
// `-- --quick` runs each phase briefly (CI checks that it runs, not the figures).
import { closedLoop, fmt, startBenchApp } from './support.ts'

const quick = process.argv.includes('--quick')
const SECONDS = Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 5))

const ATTACKS: Array<{ name: string, script: string, connections: number, tier: string, timeoutMs?: number, setup?: string }> = [
  { name: 'memory: resizable ArrayBuffer + huge strings', connections: 2, tier: 'free', script: "try { const b = new ArrayBuffer(1, {maxByteLength: 2**32}); b.resize(2**30) } catch (e) {}\nreturn 'x'.repeat(2**28).indexOf('y')" },
  { name: 'memory bomb (string doubling)', connections: 2, tier: 'free', script: 'let s = "xxxxxxxxxxxxxxxx"\nfor (;;) { s += s; s.indexOf("y") }' },
  { name: 'work after TIMEOUT (sort of long strings)', connections: 2, tier: 'free', timeoutMs: 1000, script: "const big = 'a'.repeat(2**20); const a = []; const N = 100000; for (let i = 0; i < N; i++) a.push(big.slice((i*7919) % N)); a.sort()" },
  { name: 'CPU hog: 60 busy loops', connections: 60, tier: 'enterprise', timeoutMs: 12_000, script: 'while (true) {}' },
  { name: 'big tool results: 8 parallel queries', connections: 2, tier: 'enterprise', script: "await Promise.all(Array.from({ length: 8 }, () => callTool('data:query', { collection: 'big', limit: 200 }).catch((e) => e.code)))", setup: 'big' },
  { name: 'tool flood: 20 parallel queries per run', connections: 8, tier: 'enterprise', script: "await Promise.all(Array.from({ length: 20 }, () => callTool('data:query', { limit: 10 })))" }
]

const bench = await startBenchApp()
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

await execute(bystander, "for (let i = 0; i < 5; i++) await callTool('data:insert', { document: { i } })")
await closedLoop(1, 1, async () => { await execute(bystander, TOOLS) }) // warm up
const alone = { trivial: await measure(TRIVIAL), tools: await measure(TOOLS) }

const rows: string[] = []
for (const attack of ATTACKS) {
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

console.log(`hostile-tenant benchmark: ${SECONDS} s per phase; bystander = starter tier, one request at a time`)
console.log(`${'beside'.padEnd(44)} trivial: p50    p99  ratio  20 tools: p50     p99  ratio`)
console.log(`${'(alone)'.padEnd(44)} ${fmt(alone.trivial.p50).padStart(7)} ${fmt(alone.trivial.p99).padStart(7)} ${'1.00'.padStart(6)} ${fmt(alone.tools.p50).padStart(8)} ${fmt(alone.tools.p99).padStart(8)} ${'1.00'.padStart(6)}`)
for (const row of rows) console.log(row)
console.log('\nratio = bystander p99 beside the attack / bystander p99 alone; target <= 2.00 for every row')
await bench.fastify.close()
