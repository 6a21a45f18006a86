// npm run bench:check: the pre-flight check (POST /api/execute/check) and the cost of
// `language: 'typescript'` on POST /api/execute, over real HTTP (autocannon) against the app on
// embedded defaults, each as a ratio against the JavaScript run measured in the same run.
// Target: TypeScript adds <= 10% to a trivial script's end-to-end time.
import { autocannon, fmt, startBenchApp } from './support.ts'
import { stripTypes } from '../services/code-mode/strip-types.ts'
import { analyzeScript } from '../services/enclave/index.ts'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const CONNECTIONS = [1, 8]

// About 5 KB of typed code that calls a tool; its JavaScript twin is the same code type-stripped
// (same length, same positions), so both runs do the same work.
function fiveKbScript (): string {
  const parts = ['interface Line { sku: string, qty: number, price: number }', 'type Totals = Record<string, number>']
  for (let i = 0; parts.join('\n').length < 5000; i++) {
    parts.push(`function total${i} (lines: Line[], factor: number = ${i + 1}): number {\n  return lines.reduce((sum: number, l: Line) => sum + l.qty * l.price * factor, 0) as number\n}`)
  }
  parts.push('const lines: Line[] = [{ sku: "a", qty: 2, price: 3 }, { sku: "b", qty: 1, price: 5 }]')
  parts.push('const totals: Totals = { first: total0(lines) }')
  parts.push("const docs = await callTool('data:query', { limit: 1 }) as unknown[]")
  parts.push('return { totals, docs: docs.length }')
  return parts.join('\n')
}

const TS_5KB = fiveKbScript()
const stripped = stripTypes(TS_5KB)
if (!stripped.ok) throw new Error(`the benchmark script does not strip: ${stripped.message}`)
const JS_5KB = stripped.code
const TRIVIAL_JS = 'return 1 + 1'
const TRIVIAL_TS = 'const n: number = 1 + 1\nreturn n as number'

const bench = await startBenchApp()
const headers = await bench.tenant('bench-check', { maxConcurrentExecutions: 1000, maxCodeSizeKB: 100 })

interface Cell { rps: number, p50: number, p99: number, mean: number }
async function measure (path: string, body: Record<string, unknown>, connections: number): Promise<Cell> {
  const options = { url: `${bench.url}${path}`, headers, body: JSON.stringify(body), connections }
  // The answer must be what we mean to measure, not a refusal.
  const probe = await bench.fastify.inject({ method: 'POST', url: path, headers, payload: body })
  const answer = probe.json() as { success?: boolean, ok?: boolean }
  if (probe.statusCode !== 200 || answer.success === false || answer.ok === false) throw new Error(`${path} ${JSON.stringify(body).slice(0, 60)}: ${probe.body.slice(0, 300)}`)
  await autocannon({ ...options, duration: 1 })
  const result = await autocannon({ ...options, duration: SECONDS })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${path}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average }
}

console.log(`tenant-enclave code-mode benchmark: ${SECONDS} s per cell, Node ${process.version}, embedded PGlite + in-process store`)
console.log(`5 KB script: ${Buffer.byteLength(TS_5KB)} bytes of TypeScript\n`)
console.log('what                          conns   req/s  p50 ms  p99 ms  mean ms | mean vs JavaScript run')
const row = (label: string, connections: number, cell: Cell, versus?: Cell): void => {
  console.log(`${label.padEnd(29)} ${String(connections).padStart(5)} ${fmt(cell.rps, 0).padStart(7)}  ${fmt(cell.p50).padStart(6)}  ${fmt(cell.p99).padStart(6)}  ${fmt(cell.mean).padStart(7)} | ${versus === undefined ? '' : fmt(cell.mean / versus.mean)}`)
}
const added: Record<string, number> = {}
for (const connections of CONNECTIONS) {
  const trivialJs = await measure('/api/execute', { code: TRIVIAL_JS }, connections)
  const trivialTs = await measure('/api/execute', { code: TRIVIAL_TS, language: 'typescript' }, connections)
  const bigJs = await measure('/api/execute', { code: JS_5KB }, connections)
  const bigTs = await measure('/api/execute', { code: TS_5KB, language: 'typescript' }, connections)
  const checkJs = await measure('/api/execute/check', { code: JS_5KB }, connections)
  const checkTs = await measure('/api/execute/check', { code: TS_5KB, language: 'typescript' }, connections)
  row('execute trivial, javascript', connections, trivialJs)
  row('execute trivial, typescript', connections, trivialTs, trivialJs)
  row('execute 5 KB, javascript', connections, bigJs)
  row('execute 5 KB, typescript', connections, bigTs, bigJs)
  row('check 5 KB, javascript', connections, checkJs, bigJs)
  row('check 5 KB, typescript', connections, checkTs, bigJs)
  added[`trivial/${connections}`] = trivialTs.mean / trivialJs.mean - 1
  added[`5 KB/${connections}`] = bigTs.mean / bigJs.mean - 1
}
console.log('\nadded by language: typescript (target: trivial <= 10%):')
for (const [cell, ratio] of Object.entries(added)) {
  console.log(`  ${cell.padEnd(12)} conns: ${fmt(ratio * 100, 1)}%${cell.startsWith('trivial') ? (ratio <= 0.1 ? ' meets the target' : ' MISSES the target') : ''}`)
}

// The host-side steps alone, in process: what TypeScript and the check add, without HTTP's noise.
const perOp = (work: () => unknown): number => {
  for (let i = 0; i < 50; i++) work()
  const t0 = performance.now()
  for (let i = 0; i < 500; i++) work()
  return (performance.now() - t0) / 500
}
console.log('\nin process, ms per call:')
console.log(`  strip trivial ${fmt(perOp(() => stripTypes(TRIVIAL_TS)), 3)}, strip 5 KB ${fmt(perOp(() => stripTypes(TS_5KB)), 3)}, parse + STRICT walk 5 KB ${fmt(perOp(() => analyzeScript(JS_5KB, { strict: true })), 3)}`)
await bench.fastify.close()
