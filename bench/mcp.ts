// npm run bench:mcp: what MCP costs, in one run on loopback.
// 1. execute_script of a trivial script over /mcp (the SDK's Client, one connected client)
//    against POST /api/execute of the same script (keep-alive fetch). Target: <= 1.3x.
// 2. A script making 20 sequential calls to a remote MCP tool (examples/mcp-upstream, registered
//    as platform tools), per call, against 20 calls of the same tool from a bare SDK Client
//    connected straight to the upstream. Target: <= 1.5x per call.
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { signToken } from '../services/tokens.ts'
import { startMcpUpstream } from '../examples/mcp-upstream/server.ts'
import { fmt, percentile, startBenchApp } from './support.ts'

const RUNS = Number(process.env.BENCH_RUNS ?? 200)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CALLS = 20

const enclave = { url: '' }
const upstream = await startMcpUpstream({ enclaveUrl: () => enclave.url })
const bench = await startBenchApp({ TOOL_UPSTREAMS: upstream.origin })
enclave.url = bench.url
const headers = await bench.tenant('bench-mcp', { maxToolCallsPerExecution: 100_000, maxConcurrentExecutions: 100 })
const token = signToken({ tenantId: 'bench-mcp', userId: 'bench', permissions: ['tool:data:query', 'tool:notes:whoami'] }, { secret: bench.secret }, 3600)
const admin = { authorization: `Bearer ${signToken({ tenantId: 'platform', userId: 'bench', permissions: ['admin'] }, { secret: bench.secret })}`, 'content-type': 'application/json' }
const registered = await fetch(`${bench.url}/admin/mcp-servers`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'notes', url: upstream.url, prefix: 'notes', defaultEnabled: true }) })
if (registered.status !== 200) throw new Error(`registration failed: ${await registered.text()}`)

async function connect (url: string, bearer: string): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${bearer}` } } }))
  return client
}

const median = (values: number[]): number => percentile([...values].sort((a, b) => a - b), 50)

async function timed (n: number, fn: () => Promise<void>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const started = performance.now()
    await fn()
    out.push(performance.now() - started)
  }
  return out
}

// 1. Trivial script: MCP against REST, one call of each in turn so drift hits both alike.
const mcp = await connect(`${bench.url}/mcp`, token)
const rest = async (code: string): Promise<any> => {
  const res = await fetch(`${bench.url}/api/execute`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}` }, body: JSON.stringify({ code }) })
  return await res.json()
}
const viaMcp = async (code: string): Promise<any> => (await mcp.callTool({ name: 'execute_script', arguments: { code } })).structuredContent
await timed(20, async () => { await rest('return 1') })
await timed(20, async () => { await viaMcp('return 1') })
const restTimes: number[] = []
const mcpTimes: number[] = []
// One of each in turn: on a shared machine the load moves within seconds.
for (let i = 0; i < ROUNDS * RUNS; i++) {
  restTimes.push(...await timed(1, async () => { await rest('return 1') }))
  mcpTimes.push(...await timed(1, async () => { await viaMcp('return 1') }))
}
const restP50 = median(restTimes)
const mcpP50 = median(mcpTimes)

// 2. Upstream MCP tool: per call from a script, against a bare SDK client on the upstream.
const script = `for (let i = 0; i < ${CALLS}; i++) await callTool('notes:whoami', {})\nreturn ${CALLS}`
const check = await rest(script)
if (check.success !== true) throw new Error(`the upstream script failed: ${JSON.stringify(check)}`)
const assertion = (): string => bench.fastify.serviceKeys.toolSigner.sign({ audience: upstream.origin, tenantId: 'bench-mcp', userId: 'bench', executionId: 'bench', tool: 'notes:whoami' }).token
const bare = await connect(upstream.url, assertion())
await timed(20, async () => { await bare.callTool({ name: 'whoami', arguments: {} }) })
const scriptPerCall: number[] = []
const barePerCall: number[] = []
for (let round = 0; round < ROUNDS * 5; round++) {
  // A run's own fixed cost (admission, isolate, result) is taken off: what is left is the calls.
  const empty = await timed(1, async () => { await rest(`return ${CALLS}`) })
  const full = await timed(1, async () => { await rest(script) })
  scriptPerCall.push(((full[0] as number) - (empty[0] as number)) / CALLS)
  const calls = await timed(1, async () => { for (let i = 0; i < CALLS; i++) await bare.callTool({ name: 'whoami', arguments: {} }) })
  barePerCall.push((calls[0] as number) / CALLS)
}
const scriptCall = median(scriptPerCall)
const bareCall = median(barePerCall)

console.log('MCP benchmark (loopback, one sequential caller; medians)')
console.log(`  execute_script over /mcp      p50 ${fmt(mcpP50)} ms   vs POST /api/execute p50 ${fmt(restP50)} ms   ratio ${fmt(mcpP50 / restP50)}x (target <= 1.3x)`)
console.log(`  upstream MCP tool from script ${fmt(scriptCall)} ms/call  vs bare SDK client ${fmt(bareCall)} ms/call   ratio ${fmt(scriptCall / bareCall)}x (target <= 1.5x)`)
await mcp.close()
await bare.close()
await bench.fastify.close()
await upstream.close()
