import type { LimitStore } from '../store/index.ts'
import { utcDayWindow } from '../store/index.ts'
import type { TenantQuotas } from '../tenants/tiers.ts'
import { concurrencyKey, executionsKey } from './counter-keys.ts'
import { formatMessage, registry, ServiceError, type MessageParams, type StatusOf } from '../errors/index.ts'

// Each kind of refusal and its registry code; a refusal's status and message come from there.
const REFUSAL_CODES = {
  'code-size': 'CODE_TOO_LARGE',
  concurrency: 'CONCURRENCY_LIMIT_EXCEEDED',
  'daily-executions': 'EXECUTION_QUOTA_EXCEEDED',
  'queue-full': 'QUEUE_FULL'
} as const
type RefusalKind = keyof typeof REFUSAL_CODES
type RefusalOf<K extends RefusalKind> = { kind: K, status: StatusOf<typeof REFUSAL_CODES[K]>, code: typeof REFUSAL_CODES[K], error: string, limit: number }

/**
 * A request refused before running. It carries its HTTP status, stable code and message, so the
 * route and the audit row read them from here instead of mapping kinds to codes themselves.
 */
export type Refusal =
  | RefusalOf<'code-size'>
  | RefusalOf<'concurrency'>
  | RefusalOf<'daily-executions'> & { reset: string, retryAfterSeconds: number }

/** A submission refused because its tenant already has `limit` runs queued. */
export type QueueFullRefusal = RefusalOf<'queue-full'>

/** The one way a refusal is made: `limit` is the only parameter refusal messages take. */
function refusal<K extends RefusalKind> (kind: K, limit: number): RefusalOf<K> {
  const code: typeof REFUSAL_CODES[K] = REFUSAL_CODES[kind]
  return { kind, status: registry[code].status as StatusOf<typeof code>, code, error: formatMessage(code, { limit } as MessageParams<typeof code>), limit }
}

/** The refusal as an error the error handler answers (the same status, code, message and fields). */
export function refusalError (refused: Refusal | QueueFullRefusal): ServiceError {
  const reset = 'reset' in refused ? { reset: refused.reset } : {}
  const retry = 'retryAfterSeconds' in refused ? { retryAfterSeconds: refused.retryAfterSeconds } : {}
  return new ServiceError(refused.code, { limit: refused.limit }, { fields: { limit: refused.limit, ...reset }, ...retry })
}

/** The code is over maxCodeSizeKB (UTF-8 bytes); checked before any quota is touched. */
export function codeSizeRefusal (maxCodeSizeKB: number): Refusal {
  return refusal('code-size', maxCodeSizeKB)
}

export type Admission =
  | { admitted: true, release: () => Promise<void>, refund: () => Promise<void> }
  | { admitted: false, refusal: Refusal }

// A lease outlives the longest run a little, so only a crashed instance ever lets one expire.
const LEASE_MARGIN_MS = 5_000

/**
 * Takes a concurrency slot and one of today's executions in one atomic store call (one Redis
 * round trip). A refused request consumes neither: the slot is checked first, and it is taken
 * only when the day's counter has room.
 */
export async function admitExecution (
  store: LimitStore,
  tenantId: string,
  executionId: string,
  quotas: TenantQuotas,
  runTimeoutMs: number
): Promise<Admission> {
  const slotKey = concurrencyKey(tenantId)
  const day = utcDayWindow()
  const admitted = await store.admit(slotKey, executionId, quotas.maxConcurrentExecutions, runTimeoutMs + LEASE_MARGIN_MS, executionsKey(tenantId, day.dayKey), quotas.maxExecutionsPerDay, day.ttlMs)
  if (admitted.outcome === 'lease-refused') return { admitted: false, refusal: refusal('concurrency', quotas.maxConcurrentExecutions) }
  if (admitted.outcome === 'counter-refused') return { admitted: false, refusal: dailyRefusal(quotas, day) }
  return {
    admitted: true,
    release: async () => { await store.releaseLease(slotKey, executionId) },
    /** Gives back today's execution, for a run that was lost through no fault of the tenant. */
    refund: async () => { await store.refund(executionsKey(tenantId, day.dayKey), 1) }
  }
}

// Queued runs (POST /api/executions) split admission in two: today's execution is consumed when
// the run is submitted, and the concurrency slot is taken when a worker starts it.

export type SubmissionAdmission =
  | { admitted: false, refusal: QueueFullRefusal | Refusal }
  | { admitted: true, withdraw: () => Promise<void> }

/**
 * A submission's place in its tenant's queue bound (a lease on `queue.key`) and one of today's
 * executions, in one atomic store call (one Redis round trip), like admitExecution: a refused
 * submission takes neither. `withdraw` gives both back, for a submission that then failed.
 */
export async function admitSubmission (
  store: LimitStore,
  tenantId: string,
  executionId: string,
  quotas: TenantQuotas,
  queue: { key: string, bound: number, leaseMs: number }
): Promise<SubmissionAdmission> {
  const day = utcDayWindow()
  const admitted = await store.admit(queue.key, executionId, queue.bound, queue.leaseMs, executionsKey(tenantId, day.dayKey), quotas.maxExecutionsPerDay, day.ttlMs)
  if (admitted.outcome === 'lease-refused') return { admitted: false, refusal: refusal('queue-full', queue.bound) }
  if (admitted.outcome === 'counter-refused') return { admitted: false, refusal: dailyRefusal(quotas, day) }
  return {
    admitted: true,
    withdraw: async () => {
      await Promise.all([store.releaseLease(queue.key, executionId), store.refund(executionsKey(tenantId, day.dayKey), 1)])
    }
  }
}

/** Takes a concurrency slot for a queued run that is starting; null when the tenant has none free. */
export async function acquireRunSlot (
  store: LimitStore, tenantId: string, executionId: string, quotas: TenantQuotas, runTimeoutMs: number
): Promise<{ release: () => Promise<void>, refund: () => Promise<void> } | null> {
  const slotKey = concurrencyKey(tenantId)
  const got = await store.acquireLease(slotKey, executionId, quotas.maxConcurrentExecutions, runTimeoutMs + LEASE_MARGIN_MS)
  if (!got) return null
  return {
    release: async () => { await store.releaseLease(slotKey, executionId) },
    refund: async () => { const day = utcDayWindow(); await store.refund(executionsKey(tenantId, day.dayKey), 1) }
  }
}

function dailyRefusal (quotas: TenantQuotas, day: ReturnType<typeof utcDayWindow>): Refusal {
  return { ...refusal('daily-executions', quotas.maxExecutionsPerDay), reset: day.periodEnd, retryAfterSeconds: Math.max(1, Math.ceil(day.ttlMs / 1000)) }
}
