// npm run bench:tool-path (add `-- --real` for DATABASE_URL + REDIS_URL): what one tool call costs
// from a script, next to its floors measured in the same run:
//   - a bare process-to-process round trip (a child echoing JSON lines over a pipe): the floor of
//     this design, where a tool call crosses isolate → runner → main → runner → isolate;
//   - an echo tool call through the in-process enclave (no quota, no database);
//   - a `data:query` call over the whole service path (token, quotas, gateway, RLS statement):
//     per call above the trivial run, (20 calls − 0 calls) / 20. Target (issue 31): ≤ 0.6 ms on
//     real PostgreSQL;
//   - with --real, its floor: data:query's own statement on the warm pool, sent as the tool
//     sends it (the tenant's settings and the statement, one simple-protocol message, one round
//     trip); and, for comparison, the same work as four round trips (begin, set_config, the
//     statement with bind parameters, commit), as a transaction would be written by hand.
// Runs alternate in rounds (BENCH_ROUNDS, default 3), each side in turn, and the medians are
// printed: on a shared machine the load moves within seconds.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import pg from 'pg'
import { dataQueryStatement } from '../services/tools/data-tools.ts'
import { tenantStatementText } from '../services/db/with-tenant.ts'
import { backendLabel, fmt, REAL, startBenchApp } from './support.ts'

const QUICK = process.argv.includes('--quick')
const N = QUICK ? 30 : Number(process.env.BENCH_RUNS ?? 300)
const CALLS = 20

async function timeEach (n: number, once: () => Promise<void>): Promise<number> {
  for (let i = 0; i < Math.min(20, n); i++) await once() // warm-up
  const t0 = performance.now()
  for (let i = 0; i < n; i++) await once()
  return (performance.now() - t0) / n
}

// ---- floor: a bare round trip between two processes, one JSON line each way
async function bareRoundTrip (n: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', "process.stdin.setEncoding('utf8'); let b=''; process.stdin.on('data', (c) => { b += c; let i; while ((i = b.indexOf('\\n')) >= 0) { const m = JSON.parse(b.slice(0, i)); b = b.slice(i + 1); process.stdout.write(JSON.stringify({ t: 'ret', c: m.c, v: m.a }) + '\\n') } })"], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const waiting: Array<() => void> = []
  lines.on('line', (line) => { JSON.parse(line); waiting.shift()?.() })
  let c = 0
  const ms = await timeEach(n * CALLS, async () => {
    await new Promise<void>((resolve) => {
      waiting.push(resolve)
      child.stdin.write(JSON.stringify({ t: 'call', c: c++, n: 'echo', a: JSON.stringify({ i: c }) }) + '\n')
    })
  })
  child.kill()
  return ms
}

const bench = await startBenchApp()
const tenantId = `bench-tools-${Date.now().toString(36)}`
const headers = await bench.tenant(tenantId, { maxConcurrentExecutions: 1000, maxToolCallsPerExecution: 1000 })
await bench.fastify.inject({ method: 'POST', url: '/api/execute', headers, payload: { code: "for (let i = 0; i < 10; i++) await callTool('data:insert', { document: { i } })" } })

async function execute (code: string): Promise<void> {
  const res = await bench.fastify.inject({ method: 'POST', url: '/api/execute', headers, payload: { code } })
  const body = res.json()
  if (res.statusCode !== 200 || body.success !== true) throw new Error(`run failed: ${res.body}`)
}
const echo = async (_name: string, args: unknown): Promise<unknown> => args
async function enclaveRun (code: string): Promise<void> {
  const r = await bench.fastify.enclave.run(code, { isolateKey: 'bench-tools-in-process', tools: echo, maxToolCalls: 100 })
  if (!r.success) throw new Error(`in-process run failed: ${JSON.stringify(r.error)}`)
}
const loop = (call: string): string => `for (let i = 0; i < ${CALLS}; i++) await ${call}; return 1`

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
console.log(`tool path benchmark: Node ${process.version}, ${backendLabel()}, ${ROUNDS} rounds of ${N} runs per row, ${CALLS} calls per run\n`)
const statement = dataQueryStatement(bench.fastify.db.kysely, { limit: 1 }, {}, bench.fastify.tools.limits)
const client = REAL ? new pg.Client({ connectionString: process.env.DATABASE_URL }) : undefined
await client?.connect()
const rounds: Array<{ bare: number, echo: number, query: number, oneTrip?: number, fourTrips?: number }> = []
for (let round = 0; round < ROUNDS; round++) {
  const bare = await bareRoundTrip(QUICK ? 5 : 50)
  const echo = (await timeEach(N, async () => { await enclaveRun(loop("callTool('echo', { i })")) }) - await timeEach(N, async () => { await enclaveRun('return 1') })) / CALLS
  const queryRun = await timeEach(N, async () => { await execute(loop("callTool('data:query', { limit: 1 })")) })
  const emptyRun = await timeEach(N, async () => { await execute('return 1') })
  const row: typeof rounds[number] = { bare, echo, query: (queryRun - emptyRun) / CALLS }
  if (client !== undefined) {
    // The floor: the tool's own message on the warm pool (the same text, settings included).
    const text = tenantStatementText(bench.fastify.db, tenantId, statement, 30_000)
    row.oneTrip = await timeEach(N * CALLS / 4, async () => { await bench.fastify.db.simpleQuery(text) })
    row.fourTrips = await timeEach(N * CALLS / 4, async () => {
      await client.query('begin')
      await client.query("select set_config('app.tenant_id', $1, true)", [tenantId])
      await client.query(statement.sql, [...statement.parameters])
      await client.query('commit')
    })
  }
  rounds.push(row)
}
await client?.end()
const pick = (key: keyof typeof rounds[number]): number => median(rounds.map((r) => r[key] as number))
const bare = pick('bare')
const echoPerCall = pick('echo')
const queryPerCall = pick('query')
const oneTrip = client !== undefined ? pick('oneTrip') : undefined
const fourTrips = client !== undefined ? pick('fourTrips') : undefined

console.log('leg (medians of the rounds)                                    ms per call')
console.log(`bare process round trip (pipe, JSON line each way)             ${fmt(bare, 3)}`)
console.log(`echo tool call through the enclave (in-process)               ${fmt(echoPerCall, 3)}`)
console.log(`data:query call over the service path, above the trivial run  ${fmt(queryPerCall, 3)}`)
if (oneTrip !== undefined && fourTrips !== undefined) {
  console.log(`floor: data:query's message on the warm pool (one round trip) ${fmt(oneTrip, 3)}`)
  console.log(`the same as begin + set_config + statement + commit           ${fmt(fourTrips, 3)}`)
}
console.log('\nratios and targets')
const echoRatio = echoPerCall / bare
console.log(`  echo call / bare round trip                  ${fmt(echoRatio)}x   target <= 1.5x   ${echoRatio <= 1.5 ? 'met' : 'MISSED'}`)
console.log(`  data:query per call above the trivial run    ${fmt(queryPerCall, 3)} ms   target <= 0.6 ms${REAL ? '' : ' (on real PostgreSQL: -- --real)'}   ${queryPerCall <= 0.6 ? 'met' : 'MISSED'}`)
if (oneTrip !== undefined) console.log(`  of which above its floor (the statement)     ${fmt(queryPerCall - oneTrip, 3)} ms (the isolate hop, the gateway, the audit row)`)
for (const r of rounds) console.log(`  round: bare ${fmt(r.bare, 3)}, echo ${fmt(r.echo, 3)}, data:query ${fmt(r.query, 3)}${r.oneTrip !== undefined ? `, floor ${fmt(r.oneTrip, 3)}, four trips ${fmt(r.fourTrips ?? Number.NaN, 3)}` : ''}`)
await bench.fastify.close()
