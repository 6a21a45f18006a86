import type { LimitStore } from '../store/index.ts'
import { utcDayWindow } from '../store/index.ts'
import type { PerUserQuotas, TenantQuotas } from '../tenants/tiers.ts'
import { concurrencyKey } from './counter-keys.ts'
import { admissionCounters, type DailyCounters, type DailyLimit, type UserQuotaName } from './daily-counters.ts'
import { formatMessage, registry, ServiceError, type MessageParams, type StatusOf } from '../errors/index.ts'

// Each kind of refusal and its registry code; a refusal's status and message come from there.
const REFUSAL_CODES = {
  'code-size': 'CODE_TOO_LARGE',
  concurrency: 'CONCURRENCY_LIMIT_EXCEEDED',
  'daily-executions': 'EXECUTION_QUOTA_EXCEEDED',
  'daily-cpu': 'CPU_QUOTA_EXCEEDED',
  'user-quota': 'USER_QUOTA_EXCEEDED',
  'queue-full': 'QUEUE_FULL'
} as const
type RefusalKind = keyof typeof REFUSAL_CODES
type RefusalOf<K extends RefusalKind> = { kind: K, status: StatusOf<typeof REFUSAL_CODES[K]>, code: typeof REFUSAL_CODES[K], error: string, limit: number }
type Daily = { reset: string, retryAfterSeconds: number }

/**
 * A request refused before running. It carries its HTTP status, stable code and message, so the
 * route and the audit row read them from here instead of mapping kinds to codes themselves.
 */
export type Refusal =
  | RefusalOf<'code-size'>
  | RefusalOf<'concurrency'>
  | RefusalOf<'daily-executions'> & Daily
  | RefusalOf<'daily-cpu'> & Daily
  | RefusalOf<'user-quota'> & Daily & { quota: UserQuotaName }

/** A submission refused because its tenant already has `limit` runs queued. */
export type QueueFullRefusal = RefusalOf<'queue-full'>

/** The one way a refusal is made: `limit` (and for the daily ones their reset and names) fill its message. */
function refusal<K extends RefusalKind> (kind: K, limit: number, params: Record<string, string | number> = {}): RefusalOf<K> {
  const code: typeof REFUSAL_CODES[K] = REFUSAL_CODES[kind]
  return { kind, status: registry[code].status as StatusOf<typeof code>, code, error: formatMessage(code, { ...params, limit } as MessageParams<typeof code>), limit }
}

/** The refusal as an error the error handler answers (the same status, code, message and fields). */
export function refusalError (refused: Refusal | QueueFullRefusal): ServiceError {
  const quota = 'quota' in refused ? { quota: refused.quota } : {}
  const reset = 'reset' in refused ? { reset: refused.reset } : {}
  const retry = 'retryAfterSeconds' in refused ? { retryAfterSeconds: refused.retryAfterSeconds } : {}
  const error = new ServiceError(refused.code, { limit: refused.limit } as never, { fields: { limit: refused.limit, ...quota, ...reset }, ...retry })
  // The message was made with every parameter when the refusal was; the error keeps it whole.
  error.message = refused.error
  return error
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
 * round trip), checking the day's CPU budget and, when the tenant limits its users, the user's
 * executions and CPU in the same call (daily-counters.ts). A refused request consumes nothing:
 * the slot is checked first, and it and the counters are taken only when every counter has room.
 */
export async function admitExecution (
  store: LimitStore,
  caller: AdmittedCaller,
  executionId: string,
  runTimeoutMs: number
): Promise<Admission> {
  const { tenantId, quotas } = caller
  const slotKey = concurrencyKey(tenantId)
  const day = utcDayWindow()
  const daily = admissionCounters(caller, day)
  const admitted = await store.admit({ key: slotKey, holderId: executionId, limit: quotas.maxConcurrentExecutions, leaseMs: runTimeoutMs + LEASE_MARGIN_MS }, daily.counters, day.ttlMs)
  if (admitted.outcome === 'lease-refused') return { admitted: false, refusal: refusal('concurrency', quotas.maxConcurrentExecutions) }
  if (admitted.outcome === 'counter-refused') return { admitted: false, refusal: dailyRefusal(daily, admitted.refused ?? 0, day) }
  return {
    admitted: true,
    release: async () => { await store.releaseLease(slotKey, executionId) },
    /** Gives back today's execution, for a run that was lost through no fault of the tenant. */
    refund: async () => { await refundExecution(store, daily) }
  }
}

/** Who is admitted: the tenant, its quotas, and the user with the tenant's per-user limits. */
export interface AdmittedCaller {
  tenantId: string
  userId: string
  quotas: TenantQuotas
  perUser?: PerUserQuotas
}

/** Gives back the execution an admission took, from every counter that counted it. */
async function refundExecution (store: LimitStore, daily: DailyCounters): Promise<void> {
  await Promise.all(daily.counters.filter((c) => c.take > 0).map(async (c) => { await store.refund(c.key, c.take) }))
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
  caller: AdmittedCaller,
  executionId: string,
  queue: { key: string, bound: number, leaseMs: number }
): Promise<SubmissionAdmission> {
  const day = utcDayWindow()
  const daily = admissionCounters(caller, day)
  const admitted = await store.admit({ key: queue.key, holderId: executionId, limit: queue.bound, leaseMs: queue.leaseMs }, daily.counters, day.ttlMs)
  if (admitted.outcome === 'lease-refused') return { admitted: false, refusal: refusal('queue-full', queue.bound) }
  if (admitted.outcome === 'counter-refused') return { admitted: false, refusal: dailyRefusal(daily, admitted.refused ?? 0, day) }
  return {
    admitted: true,
    withdraw: async () => {
      await Promise.all([store.releaseLease(queue.key, executionId), refundExecution(store, daily)])
    }
  }
}

/**
 * Gives back today's execution of a queued run that the service lost (its worker died, or the
 * queue failed it while Redis failed over): it was never re-run, so the tenant is not charged
 * for it, as for a run whose sandbox process another run took down.
 */
export async function refundLostRun (store: LimitStore, caller: AdmittedCaller): Promise<void> {
  await refundExecution(store, admissionCounters(caller, utcDayWindow()))
}

/** Takes a concurrency slot for a queued run that is starting; null when the tenant has none free. */
export async function acquireRunSlot (
  store: LimitStore, caller: AdmittedCaller, executionId: string, runTimeoutMs: number
): Promise<{ release: () => Promise<void>, refund: () => Promise<void> } | null> {
  const slotKey = concurrencyKey(caller.tenantId)
  const got = await store.acquireLease(slotKey, executionId, caller.quotas.maxConcurrentExecutions, runTimeoutMs + LEASE_MARGIN_MS)
  if (!got) return null
  return {
    release: async () => { await store.releaseLease(slotKey, executionId) },
    refund: async () => { await refundExecution(store, admissionCounters(caller, utcDayWindow())) }
  }
}

/** The refusal of the daily counter at `index` of an admission: the tenant's, or one of its user's. */
function dailyRefusal (daily: DailyCounters, index: number, day: ReturnType<typeof utcDayWindow>): Refusal {
  const reset = { reset: day.periodEnd, retryAfterSeconds: Math.max(1, Math.ceil(day.ttlMs / 1000)) }
  const limit: DailyLimit = daily.limits[index] ?? daily.limits[0] as DailyLimit
  if (limit.kind === 'tenant-executions') return { ...refusal('daily-executions', limit.limit), ...reset }
  if (limit.kind === 'tenant-cpu') return { ...refusal('daily-cpu', limit.limit, { reset: reset.reset }), ...reset }
  return { ...refusal('user-quota', limit.limit, { reset: reset.reset, quota: limit.quota, unit: limit.unit }), ...reset, quota: limit.quota }
}
