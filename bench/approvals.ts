// Approvals (not a test): what resuming a waiting run costs. A queued run makes `calls` plain tool
// calls, then one gated call, and waits; the decision → final latency (the resumed start replays
// the recorded calls, then inserts) is compared with the same script queued with no gate at all
// (submit → final: every call live). Embedded defaults, or --real PostgreSQL + Redis. Runs one at
// a time, in the service's process (inject); on a shared machine the figures are indicative and
// the ratio is the point: replaying a recorded call costs less than making it.
import { signToken } from '../services/tokens.ts'
import { backendLabel, fmt, percentile, startBenchApp } from './support.ts'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10)
const CALLS = (process.env.BENCH_APPROVAL_CALLS ?? '0,100').split(',').map(Number)

const bench = await startBenchApp()
const { fastify } = bench
const admin = `Bearer ${signToken({ tenantId: 'platform', userId: 'bench', permissions: ['admin'] }, { secret: bench.secret })}`
const statusOf = async (headers: Record<string, string>, id: string): Promise<string> =>
  ((await fastify.inject({ method: 'GET', url: `/api/executions/${id}`, headers })).json() as { status: string }).status
async function until (headers: Record<string, string>, id: string, status: string): Promise<void> {
  for (;;) {
    const now = await statusOf(headers, id)
    if (now === status) return
    if (['succeeded', 'failed', 'cancelled'].includes(now)) throw new Error(`${id} ended ${now}, not ${status}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}
async function submit (headers: Record<string, string>, code: string): Promise<string> {
  const res = await fastify.inject({ method: 'POST', url: '/api/executions', headers, payload: { code } })
  return (res.json() as { executionId: string }).executionId
}

console.log(`rounds: ${ROUNDS} per size (${backendLabel()}; one run at a time)`)
for (const calls of CALLS) {
  const code = `for (let i = 0; i < ${calls}; i++) await callTool('data:query', {}); await callTool('data:insert', { document: { n: 1 } }); return 1`
  const gated = await bench.tenant(`bench-approvals-gated-${calls}`, { maxToolCallsPerExecution: calls + 10 })
  const plain = await bench.tenant(`bench-approvals-plain-${calls}`, { maxToolCallsPerExecution: calls + 10 })
  const gatedId = `bench-approvals-gated-${calls}`
  await fastify.inject({ method: 'PUT', url: `/admin/tenants/${gatedId}/tools/data:insert`, headers: { authorization: admin }, payload: { approval: 'always' } })
  const decider = { authorization: `Bearer ${signToken({ tenantId: gatedId, userId: 'approver', permissions: ['approvals:decide'] }, { secret: bench.secret })}`, 'content-type': 'application/json' }
  const resumeMs: number[] = []
  const liveMs: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const id = await submit(gated, code)
    await until(gated, id, 'awaiting_approval')
    const started = performance.now()
    await fastify.inject({ method: 'POST', url: `/api/executions/${id}/approvals`, headers: decider, payload: { approveAll: true } })
    await until(gated, id, 'succeeded')
    resumeMs.push(performance.now() - started)
    const begun = performance.now()
    await until(plain, await submit(plain, code), 'succeeded')
    liveMs.push(performance.now() - begun)
  }
  const r = [...resumeMs].sort((a, b) => a - b)
  const l = [...liveMs].sort((a, b) => a - b)
  console.log(`${calls} recorded calls: decision → succeeded p50 ${fmt(percentile(r, 50))} ms p99 ${fmt(percentile(r, 99))} ms; the same run live, submit → succeeded p50 ${fmt(percentile(l, 50))} ms; ratio p50 ${fmt(percentile(r, 50) / percentile(l, 50))}× (target ≤ 1.5×)`)
}
await fastify.close()
