// npm run bench:tool-path (add `-- --real` for DATABASE_URL + REDIS_URL): what one tool call costs
// from a script, next to its floors measured in the same run:
//   - a bare process-to-process round trip (a child echoing JSON lines over a pipe): the floor of
//     this design, where a tool call crosses isolate → runner → main → runner → isolate;
//   - an echo tool call through the in-process enclave (no quota, no database);
//   - a `data:query` call over the whole service path (token, quotas, gateway, RLS transaction);
//   - with --real, the same work straight from Node with `pg`: a transaction that sets the
//     tenant and role and runs data:query's statement (the same text the tool sends), and one
//     that runs only a plain SELECT of the same page.
// Per-call costs are differences: (20 calls - 0 calls) / 20, so the run's fixed costs cancel.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import pg from 'pg'
import { dataQueryStatement } from '../services/tools/data-tools.ts'
import { backendLabel, fmt, REAL, startBenchApp } from './support.ts'

const QUICK = process.argv.includes('--quick')
const N = QUICK ? 30 : 300
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

console.log(`tool path benchmark: Node ${process.version}, ${backendLabel()}, ${N} runs per row, ${CALLS} calls per run\n`)
const bare = await bareRoundTrip(QUICK ? 5 : 50)
const echoPerCall = (await timeEach(N, async () => { await enclaveRun(loop("callTool('echo', { i })")) }) - await timeEach(N, async () => { await enclaveRun('return 1') })) / CALLS
const queryRun = await timeEach(N, async () => { await execute(loop("callTool('data:query', { limit: 1 })")) })
const emptyRun = await timeEach(N, async () => { await execute('return 1') })
const queryPerCall = (queryRun - emptyRun) / CALLS

let direct1: number | undefined
let direct2: number | undefined
if (REAL) {
  // The app role, the same settings and the same SQL as data:query (limit 1, collection data).
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
  await client.connect()
  const page = "select id from documents where collection = 'data' order by created_at, id limit 1"
  const tx = async (statement: string, parameters: readonly unknown[] = []): Promise<void> => {
    await client.query('begin')
    await client.query("select set_config('app.tenant_id', $1, true), set_config('role', $2, true)", [tenantId, bench.fastify.db.appRole])
    await client.query(statement, [...parameters])
    await client.query('commit')
  }
  const statement = dataQueryStatement(bench.fastify.db.kysely, { limit: 1 }, {}, bench.fastify.tools.limits)
  direct1 = await timeEach(N * CALLS / 4, async () => { await tx(`select id, tenant_id, body, created_by, created_at from documents where id in (${page})`) })
  direct2 = await timeEach(N * CALLS / 4, async () => { await tx(statement.sql, statement.parameters) })
  await client.end()
}

console.log('leg                                                        ms per call')
console.log(`bare process round trip (pipe, JSON line each way)         ${fmt(bare, 3)}`)
console.log(`echo tool call through the enclave (in-process)           ${fmt(echoPerCall, 3)}`)
console.log(`data:query call over the service path                     ${fmt(queryPerCall, 3)}`)
if (direct1 !== undefined && direct2 !== undefined) {
  console.log(`direct pg: begin + set tenant + 1 SELECT + commit          ${fmt(direct1, 3)}`)
  console.log(`direct pg: begin + set tenant + data:query's statement + commit ${fmt(direct2, 3)}`)
}
console.log('\nratios')
const echoRatio = echoPerCall / bare
console.log(`  echo call / bare round trip                    ${fmt(echoRatio)}x   target <= 1.5x   ${echoRatio <= 1.5 ? 'met' : 'MISSED'}`)
if (direct1 !== undefined && direct2 !== undefined) {
  for (const [label, direct] of [["data:query's statement", direct2], ['a plain SELECT of the page', direct1]] as const) {
    const bound = 1.3 * direct + 0.15
    console.log(`  data:query / (1.3 x direct pg (${label}) + 0.15 ms)  ${fmt(queryPerCall / bound)}   target <= 1.0   ${queryPerCall <= bound ? 'met' : 'MISSED'}`)
  }
} else {
  console.log('  data:query vs direct pg: run with --real (DATABASE_URL, REDIS_URL)')
}
await bench.fastify.close()
