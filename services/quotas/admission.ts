import type { LimitStore } from '../store/index.ts'
import { utcDayWindow } from '../store/index.ts'
import type { TenantQuotas } from '../tenants/tiers.ts'
import { concurrencyKey, executionsKey } from './counter-keys.ts'

export type Refusal =
  | { kind: 'concurrency', limit: number }
  | { kind: 'daily-executions', limit: number, reset: string, retryAfterSeconds: number }

export type Admission =
  | { admitted: true, release: () => Promise<void>, refund: () => Promise<void> }
  | { admitted: false, refusal: Refusal }

// A lease outlives the longest run a little, so only a crashed instance ever lets one expire.
const LEASE_MARGIN_MS = 5_000

/**
 * Takes a concurrency slot, then one of today's executions. A refused request consumes neither:
 * a slot taken for a run that the daily quota then refuses is given back at once.
 */
export async function admitExecution (
  store: LimitStore,
  tenantId: string,
  executionId: string,
  quotas: TenantQuotas,
  runTimeoutMs: number
): Promise<Admission> {
  const slotKey = concurrencyKey(tenantId)
  const gotSlot = await store.acquireLease(slotKey, executionId, quotas.maxConcurrentExecutions, runTimeoutMs + LEASE_MARGIN_MS)
  if (!gotSlot) return { admitted: false, refusal: { kind: 'concurrency', limit: quotas.maxConcurrentExecutions } }

  const day = utcDayWindow()
  let counted
  try {
    counted = await store.consume(executionsKey(tenantId, day.dayKey), 1, quotas.maxExecutionsPerDay, day.ttlMs)
  } catch (err) {
    await store.releaseLease(slotKey, executionId).catch(() => {})
    throw err
  }
  if (!counted.allowed) {
    await store.releaseLease(slotKey, executionId)
    return {
      admitted: false,
      refusal: { kind: 'daily-executions', limit: quotas.maxExecutionsPerDay, reset: day.periodEnd, retryAfterSeconds: Math.max(1, Math.ceil(day.ttlMs / 1000)) }
    }
  }
  return {
    admitted: true,
    release: async () => { await store.releaseLease(slotKey, executionId) },
    /** Gives back today's execution, for a run that was lost through no fault of the tenant. */
    refund: async () => { await store.refund(executionsKey(tenantId, day.dayKey), 1) }
  }
}
