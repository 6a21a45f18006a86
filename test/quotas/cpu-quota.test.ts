// The tier's daily CPU budget (maxCpuSecondsPerDay): a run is charged its measured isolate CPU
// when it ends, whichever way it came (sync, queued); once the charges reach the budget, the
// tenant's next run is 429 CPU_QUOTA_EXCEEDED, with its reset. A low budget keeps this fast.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant, type TestTenant } from '../helper.ts'
import { utcDayWindow } from '../../services/store/index.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'
import { waitFor } from '../support/wait-for.ts'

const BUSY = 'const end = Date.now() + 400; while (Date.now() < end) {} return 1'

function cpuRefusal (limit: number): Record<string, unknown> {
  const reset = utcDayWindow().periodEnd
  return {
    error: `CPU quota exceeded: the tenant has used its ${limit} CPU seconds for today; runs are admitted again at ${reset} (an admin can raise maxCpuSecondsPerDay)`,
    code: 'CPU_QUOTA_EXCEEDED',
    limit,
    reset
  }
}

async function usage (app: FastifyInstance, tenant: TestTenant): Promise<{ cpuMs: number, executions: number, quotas: Record<string, number> }> {
  return (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json()
}

t.test('daily CPU budget', async (t) => {
  const app = await buildApp(t)

  t.test('every tier has a budget; the guide\'s eight quotas keep their values', async (t) => {
    t.same([TIER_QUOTAS.free.maxCpuSecondsPerDay, TIER_QUOTAS.starter.maxCpuSecondsPerDay, TIER_QUOTAS.enterprise.maxCpuSecondsPerDay], [120, 3600, 360000])
    t.same(TIER_QUOTAS.free.maxExecutionsPerDay, 100)
    const tenant = await createTenant(app, 'cpu-tiers')
    t.equal((await usage(app, tenant)).quotas.maxCpuSecondsPerDay, 120, 'usage shows the budget')
  })

  t.test('a CPU-heavy run ends under budget; the next run after the budget is used is refused, exactly then', async (t) => {
    const tenant = await createTenant(app, 'cpu-sync', { quotaOverrides: { maxCpuSecondsPerDay: 1 } })
    let charged = 0
    let refusal
    for (let run = 0; run < 20; run++) {
      const res = await tenant.execute(BUSY)
      if (res.statusCode === 429) { refusal = res; break }
      t.ok(charged < 1000, 'admitted only while under the budget')
      const cpu = res.json().stats.cpuMs as number
      t.ok(cpu > 0, 'the run measured its CPU')
      charged += cpu
      t.equal((await usage(app, tenant)).cpuMs, charged, 'charged before the response: usage has it at once')
    }
    t.ok(charged >= 1000, `refused once ${charged} ms were charged`)
    t.same(refusal?.json(), cpuRefusal(1))
    t.ok(Number(refusal?.headers['retry-after']) >= 1, 'with Retry-After')
    const queued = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: 'return 1' } })
    t.equal(queued.statusCode, 429, 'a queued submission is refused too')
    t.same(queued.json(), cpuRefusal(1))
  })

  t.test('a queued run is charged when it ends', async (t) => {
    const tenant = await createTenant(app, 'cpu-queued', { quotaOverrides: { maxCpuSecondsPerDay: 1 } })
    const submitted = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: BUSY } })
    t.equal(submitted.statusCode, 202)
    const id = submitted.json().executionId as string
    let cpu = 0
    await waitFor(async () => {
      const res = (await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })).json()
      cpu = res.result?.stats?.cpuMs ?? 0
      return res.status === 'succeeded'
    }, { timeout: 20_000, message: 'the queued run finished' })
    t.ok(cpu > 0)
    t.equal((await usage(app, tenant)).cpuMs, cpu, 'its CPU was charged (the meter\'s cpuMs)')
  })
})
