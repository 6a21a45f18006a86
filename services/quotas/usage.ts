import { utcDayWindow, type LimitStore } from '../store/index.ts'
import type { TenantQuotas, Tier } from '../tenants/tiers.ts'
import { concurrencyKey, cpuMsKey, executionsKey, toolCallsKey, waitingKey } from './counter-keys.ts'

export interface Usage {
  tenantId: string
  tier: Tier
  executions: number
  toolCalls: number
  /** Isolate CPU ms charged today, against quotas.maxCpuSecondsPerDay. */
  cpuMs: number
  concurrentExecutions: number
  /** Queued runs waiting for approval now, against quotas.maxWaitingRuns. */
  waitingRuns: number
  quotas: TenantQuotas
  periodStart: string
  periodEnd: string
}

/** Today's (UTC) counts, read from the same counters admission and the tool gateway consume. */
export async function readUsage (store: LimitStore, tenant: { tenantId: string, tier: Tier, quotas: TenantQuotas }): Promise<Usage> {
  const day = utcDayWindow()
  const [executions, toolCalls, cpuMs, concurrentExecutions, waitingRuns] = await Promise.all([
    store.get(executionsKey(tenant.tenantId, day.dayKey)),
    store.get(toolCallsKey(tenant.tenantId, day.dayKey)),
    store.get(cpuMsKey(tenant.tenantId, day.dayKey)),
    store.countLeases(concurrencyKey(tenant.tenantId)),
    store.countLeases(waitingKey(tenant.tenantId))
  ])
  return {
    tenantId: tenant.tenantId,
    tier: tenant.tier,
    executions,
    toolCalls,
    cpuMs,
    concurrentExecutions,
    waitingRuns,
    quotas: tenant.quotas,
    periodStart: day.periodStart,
    periodEnd: day.periodEnd
  }
}
