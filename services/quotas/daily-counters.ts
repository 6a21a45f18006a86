// The daily counters a run is admitted against and charged to: the tenant's executions and CPU
// budget, and, when the tenant limits its end users (perUser), the user's own. Admission checks
// them all in one atomic store call; CPU is charged to them when the run ends.
import { utcDayWindow, type AdmitCounter, type LimitStore, type UtcDayWindow } from '../store/index.ts'
import { formatMessage } from '../errors/index.ts'
import type { PerUserQuotas, TenantQuotas } from '../tenants/tiers.ts'
import { cpuMsKey, executionsKey, userCpuMsKey, userExecutionsKey } from './counter-keys.ts'

export type UserQuotaName = keyof PerUserQuotas

/** What a counter of an admission stands for, so a refusal can name it. */
export type DailyLimit =
  | { kind: 'tenant-executions', limit: number }
  | { kind: 'tenant-cpu', limit: number }
  | { kind: 'user', quota: UserQuotaName, unit: string, limit: number }

/** The counters of one admission, in the order they are checked, and what each stands for. */
export interface DailyCounters {
  counters: AdmitCounter[]
  limits: DailyLimit[]
}

export interface DailyCaller {
  tenantId: string
  userId: string
  quotas: TenantQuotas
  perUser?: PerUserQuotas
}

const MS_PER_SECOND = 1000

/**
 * Today's counters a run must have room in: the tenant's executions (one taken), the tenant's CPU
 * budget (checked: some must be left), then the user's executions and CPU when the tenant set
 * those per-user limits. A user's counter exists only while its limit does: it counts from the
 * moment the tenant sets the limit, and costs nothing for tenants that set none.
 */
export function admissionCounters (caller: DailyCaller, day: UtcDayWindow): DailyCounters {
  const { tenantId, userId, quotas, perUser = {} } = caller
  const counters: AdmitCounter[] = [
    { key: executionsKey(tenantId, day.dayKey), take: 1, limit: quotas.maxExecutionsPerDay },
    { key: cpuMsKey(tenantId, day.dayKey), take: 0, limit: quotas.maxCpuSecondsPerDay * MS_PER_SECOND }
  ]
  const limits: DailyLimit[] = [
    { kind: 'tenant-executions', limit: quotas.maxExecutionsPerDay },
    { kind: 'tenant-cpu', limit: quotas.maxCpuSecondsPerDay }
  ]
  if (perUser.executionsPerDay !== undefined) {
    counters.push({ key: userExecutionsKey(tenantId, userId, day.dayKey), take: 1, limit: perUser.executionsPerDay })
    limits.push({ kind: 'user', quota: 'executionsPerDay', unit: 'executions', limit: perUser.executionsPerDay })
  }
  if (perUser.cpuSecondsPerDay !== undefined) {
    counters.push({ key: userCpuMsKey(tenantId, userId, day.dayKey), take: 0, limit: perUser.cpuSecondsPerDay * MS_PER_SECOND })
    limits.push({ kind: 'user', quota: 'cpuSecondsPerDay', unit: 'CPU seconds', limit: perUser.cpuSecondsPerDay })
  }
  return { counters, limits }
}

// Charging never refuses (the run already happened): its limit is one no count reaches.
const NO_LIMIT = Number.MAX_SAFE_INTEGER

/**
 * Charges a finished run's measured isolate CPU (ms, rounded up) to today's tenant counter and,
 * when the tenant limits its users' CPU, to the user's. Over the budget, the next run is refused.
 */
export async function chargeCpu (store: LimitStore, caller: DailyCaller, cpuMs: number | undefined, day: UtcDayWindow): Promise<void> {
  if (cpuMs === undefined || !Number.isFinite(cpuMs) || cpuMs <= 0) return
  const amount = Math.ceil(cpuMs)
  const keys = [cpuMsKey(caller.tenantId, day.dayKey)]
  if (caller.perUser?.cpuSecondsPerDay !== undefined) keys.push(userCpuMsKey(caller.tenantId, caller.userId, day.dayKey))
  await Promise.all(keys.map(async (key) => await store.consume(key, amount, NO_LIMIT, day.ttlMs)))
}

/** What a run sees when its user's daily tool calls (perUser.toolCallsPerDay) are used up: the run ends. */
export function userToolQuotaMessage (limit: number, day = utcDayWindow()): string {
  return formatMessage('USER_QUOTA_EXCEEDED', { limit, unit: 'tool calls', quota: 'toolCallsPerDay', reset: day.periodEnd })
}
