// npm run bench:tools: an HTTP platform tool called by a script, over the whole path (isolate →
// runner → gateway checks → signed request through the pooled agent → upstream → back), next
// to the same request made directly from Node with undici, in one run on one loopback upstream.
// Both are measured the same way: the time between consecutive requests arriving at the
// upstream from one sequential caller, i.e. one full call cycle each.
// Target: the gateway adds <= 0.5 ms p50 per call.
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Agent } from 'undici'
import { signToken } from '../services/tokens.ts'
import { createToolSigner } from '../services/tools/tool-signer.ts'
import { createToolGateway } from '../services/executions/tool-gateway.ts'
import { TIER_QUOTAS } from '../services/tenants/tiers.ts'
import { fmt, percentile, startBenchApp } from './support.ts'

const CALLS = Number(process.env.BENCH_CALLS ?? 400)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const WARMUP = 20

const upstream = Fastify({ logger: false })
const arrivals = new Map<string, number[]>()
upstream.get('/item/:round/:id', async (request) => {
  const { round, id } = request.params as { round: string, id: string }
  let list = arrivals.get(round)
  if (list === undefined) arrivals.set(round, list = [])
  list.push(performance.now())
  return { id, ok: true }
})
await upstream.listen({ port: 0, host: '127.0.0.1' })
const origin = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`

const bench = await startBenchApp({ TOOL_UPSTREAMS: origin })
const admin = { authorization: `Bearer ${signToken({ tenantId: 'platform', userId: 'bench', permissions: ['admin'] }, { secret: bench.secret })}` }
const put = await bench.fastify.inject({
  method: 'PUT',
  url: '/admin/tools/bench:get',
  headers: admin,
  payload: { description: 'bench', argsSchema: { type: 'object', properties: { round: { type: 'string' }, id: { type: 'integer' } }, required: ['round', 'id'] }, http: { method: 'GET', url: `${origin}/item/{round}/{id}` }, defaultEnabled: true }
})
if (put.statusCode !== 200) throw new Error(`tool setup failed: ${put.body}`)
await bench.tenant('bench-tools', { maxToolCallsPerExecution: 100_000, maxExecutionDurationMs: 300_000 })
const headers = {
  authorization: `Bearer ${signToken({ tenantId: 'bench-tools', userId: 'bench', permissions: ['tool:bench:get'] }, { secret: bench.secret }, 3600)}`,
  'content-type': 'application/json'
}

/** Gaps between consecutive arrivals of one round, without its warm-up. */
function gaps (round: string): number[] {
  const times = arrivals.get(round) ?? []
  const out: number[] = []
  for (let i = WARMUP + 1; i < times.length; i++) out.push((times[i] as number) - (times[i - 1] as number))
  return out
}

const viaGateway: number[] = []
const direct: number[] = []
const viaRunner: number[] = []
const viaChecks: number[] = []
const runner = bench.fastify.tools.httpRunner
const definition = (await bench.fastify.tools.get('bench-tools', 'bench:get'))?.definition
if (runner === undefined || definition?.http === undefined) throw new Error('no HTTP runner or tool')
const tool = { ...definition, http: definition.http }
const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 })
for (let round = 0; round < ROUNDS; round++) {
  const g = `g${round}`
  const res = await fetch(`${bench.url}/api/execute`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ code: `for (let i = 0; i < ${CALLS}; i++) await callTool('bench:get', { round: '${g}', id: i }); return 1` })
  })
  const result = await res.json() as { success: boolean, error?: unknown }
  if (!result.success) throw new Error(`script failed: ${JSON.stringify(result.error)}`)
  viaGateway.push(...gaps(g))
  const d = `d${round}`
  for (let i = 0; i < CALLS; i++) {
    const r = await agent.request({ origin, path: `/item/${d}/${i}`, method: 'GET', headers: { accept: 'application/json' } })
    await r.body.json()
  }
  direct.push(...gaps(d))
  // The HTTP runner alone (assertion, URL, pooled request, streamed body, result check), without
  // the isolate, the runner process or the gateway's checks.
  const r = `r${round}`
  for (let i = 0; i < CALLS; i++) await runner.call(tool, { tenantId: 'bench-tools', userId: 'bench', executionId: r, callIndex: i, args: { round: r, id: i } })
  viaRunner.push(...gaps(r))
  // The gateway's checks and audit over the runner, called in this process (no isolate, no
  // runner process): what the gateway itself adds, apart from the bridge.
  const c = `c${round}`
  const gateway = createToolGateway(bench.fastify.executionDeps, { tenantId: 'bench-tools', userId: 'bench', permissions: ['tool:bench:get'], quotas: { ...TIER_QUOTAS.enterprise, maxToolCallsPerDay: 1_000_000_000, maxToolCallsPerExecution: 100_000, maxExecutionDurationMs: 300_000 } }, c)
  for (let i = 0; i < CALLS; i++) await gateway('bench:get', { round: c, id: i })
  await gateway.settle()
  viaChecks.push(...gaps(c))
}

// Where the time goes: the assertion's ES256 signature (paid on every call: each carries its own
// jti), and the isolate ↔ runner ↔ host bridge
// alone (a no-op tool run in-process on the same enclave).
const signer = await createToolSigner('bench')
const signStart = performance.now()
for (let i = 0; i < 1000; i++) signer.sign({ audience: origin, userId: 'u', tenantId: 't', executionId: 'e', tool: 'bench:get' })
const signMs = (performance.now() - signStart) / 1000
const bridgeRun = await bench.fastify.enclave.run(`for (let i = 0; i < ${CALLS}; i++) await callTool('noop', i); return 1`, { isolateKey: 'bench-bridge', tools: async () => null, maxToolCalls: 100_000, timeoutMs: 120_000 })
const bridgeStart = performance.now()
const bridge = await bench.fastify.enclave.run(`for (let i = 0; i < ${CALLS}; i++) await callTool('noop', i); return 1`, { isolateKey: 'bench-bridge', tools: async () => null, maxToolCalls: 100_000, timeoutMs: 120_000 })
const bridgeMs = (performance.now() - bridgeStart) / CALLS
if (!bridgeRun.success || !bridge.success) throw new Error('bridge run failed')

viaGateway.sort((a, b) => a - b)
direct.sort((a, b) => a - b)
viaRunner.sort((a, b) => a - b)
viaChecks.sort((a, b) => a - b)
const gp50 = percentile(viaGateway, 50)
const dp50 = percentile(direct, 50)
const rp50 = percentile(viaRunner, 50)
const cp50 = percentile(viaChecks, 50)
console.log(`tenant-enclave platform tools benchmark: ${ROUNDS} x ${CALLS} sequential calls each way, Node ${process.version}, loopback upstream\n`)
console.log('path                          calls  p50 ms  p99 ms')
console.log(`script -> gateway -> upstream ${String(viaGateway.length).padStart(6)}  ${fmt(gp50, 3).padStart(6)}  ${fmt(percentile(viaGateway, 99), 3).padStart(6)}`)
console.log(`gateway checks (in process)  ${String(viaChecks.length).padStart(6)}  ${fmt(cp50, 3).padStart(6)}  ${fmt(percentile(viaChecks, 99), 3).padStart(6)}`)
console.log(`HTTP runner -> upstream       ${String(viaRunner.length).padStart(6)}  ${fmt(rp50, 3).padStart(6)}  ${fmt(percentile(viaRunner, 99), 3).padStart(6)}`)
console.log(`node + undici -> upstream     ${String(direct.length).padStart(6)}  ${fmt(dp50, 3).padStart(6)}  ${fmt(percentile(direct, 99), 3).padStart(6)}`)
console.log(`\ngateway adds ${fmt(gp50 - dp50, 3)} ms p50 per call (target <= 0.5 ms); ratio gateway/direct p50 = ${fmt(gp50 / dp50)}`)
console.log('where it goes (p50 differences; the signature and the bridge as means):')
console.log(`  HTTP runner over plain undici   ${fmt(rp50 - dp50, 3)} ms  (URL, timer, headers, body, result check; an ES256 assertion costs ${fmt(signMs, 3)} ms, once per run and tool)`)
console.log(`  gateway checks over the runner  ${fmt(cp50 - rp50, 3)} ms  (quota unit, permission, registry, Ajv, audit enqueue, metrics)`)
console.log(`  script path over the checks     ${fmt(gp50 - cp50, 3)} ms  (isolate <-> runner process <-> host bridge alone: ${fmt(bridgeMs, 3)} ms; the rest: scheduling of two processes around a real request)`)

await agent.close()
await bench.fastify.close()
await upstream.close()
