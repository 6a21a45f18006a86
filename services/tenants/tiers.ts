import { Type, type Static } from 'typebox'

export const TIERS = ['free', 'starter', 'enterprise'] as const
export type Tier = typeof TIERS[number]
export const TierSchema = Type.Enum([...TIERS])

const MB = 1024 * 1024
const GB = 1024 * MB
/**
 * The most any tier or override may let one waiting run keep: its journal is read whole (JSON)
 * before each start, so this bounds the memory one resume takes, whatever an admin sets.
 */
export const MAX_JOURNAL_BYTES = 8 * MB

const Quota = Type.Integer({ minimum: 0, maximum: 1_000_000_000 })
// Stored bytes go past a billion on the larger tiers: their own bound (1 PB).
const storageQuota = (description: string) => Type.Integer({ minimum: 0, maximum: 1_000_000_000_000_000, description })
export const TenantQuotasSchema = Type.Object({
  maxExecutionsPerDay: Quota,
  maxExecutionDurationMs: Quota,
  maxConcurrentExecutions: Quota,
  maxToolCallsPerExecution: Quota,
  maxToolCallsPerDay: Quota,
  maxMemoryMB: Quota,
  maxCodeSizeKB: Quota,
  maxOutputSizeKB: Quota,
  maxCpuSecondsPerDay: Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Isolate CPU seconds a day: measured runs are charged when they end; over it, the next run is 429 CPU_QUOTA_EXCEEDED' }),
  storageBytes: storageQuota('Bytes the tenant may keep: its documents (the JSON text of their bodies) and the records of its runs waiting for approval'),
  storageDocuments: storageQuota('Documents the tenant may keep'),
  maxWaitingRuns: Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Queued runs that may wait for an approval at once (awaiting_approval); a run reaching a gated call past it ends APPROVAL_WAIT_LIMIT' }),
  maxJournalBytes: Type.Integer({ minimum: 0, maximum: MAX_JOURNAL_BYTES, description: 'Bytes of the record (tool results, drawn values) one waiting run may keep; past it the run ends REPLAY_RECORD_TOO_LARGE instead of waiting' })
}, { additionalProperties: false })
export type TenantQuotas = Static<typeof TenantQuotasSchema>

/** Per-tenant overrides: any subset of the quotas. */
export const QuotaOverridesSchema = Type.Partial(TenantQuotasSchema, { additionalProperties: false })
export type QuotaOverrides = Static<typeof QuotaOverridesSchema>

// The guide's TIER_QUOTAS exactly, plus three of our own (the guide has none): a daily CPU
// budget, and what a tenant may keep in its documents (the guide bounded neither, so a free
// tenant's daily tool calls could add about 500 MB a day, kept forever). And what runs waiting
// for approval may hold (they hold no slot, so neither the concurrency nor the queue bound
// counts them): how many may wait at once, and the record each keeps. A waiting record's bytes
// count toward storageBytes too, so the tier's storage bounds their sum; these bound each tier
// below it (free: 5 × 1 MiB of its 10 MiB; starter: 50 × 4 MiB of 1 GiB; enterprise: 1000 × 8 MiB
// of 100 GiB), so waiting runs alone never fill a tenant's storage.
export const TIER_QUOTAS: Record<Tier, TenantQuotas> = {
  free: {
    maxExecutionsPerDay: 100,
    maxExecutionDurationMs: 5000,
    maxConcurrentExecutions: 1,
    maxToolCallsPerExecution: 10,
    maxToolCallsPerDay: 500,
    maxMemoryMB: 32,
    maxCodeSizeKB: 50,
    maxOutputSizeKB: 100,
    maxCpuSecondsPerDay: 120,
    storageBytes: 10 * MB,
    storageDocuments: 10_000,
    maxWaitingRuns: 5,
    maxJournalBytes: 1 * MB
  },
  starter: {
    maxExecutionsPerDay: 1000,
    maxExecutionDurationMs: 30000,
    maxConcurrentExecutions: 5,
    maxToolCallsPerExecution: 50,
    maxToolCallsPerDay: 10000,
    maxMemoryMB: 64,
    maxCodeSizeKB: 100,
    maxOutputSizeKB: 500,
    maxCpuSecondsPerDay: 3_600,
    storageBytes: 1 * GB,
    storageDocuments: 1_000_000,
    maxWaitingRuns: 50,
    maxJournalBytes: 4 * MB
  },
  enterprise: {
    maxExecutionsPerDay: 100000,
    maxExecutionDurationMs: 300000,
    maxConcurrentExecutions: 100,
    maxToolCallsPerExecution: 500,
    maxToolCallsPerDay: 1000000,
    maxMemoryMB: 256,
    maxCodeSizeKB: 500,
    maxOutputSizeKB: 5000,
    maxCpuSecondsPerDay: 360_000,
    storageBytes: 100 * GB,
    storageDocuments: 100_000_000,
    maxWaitingRuns: 1000,
    maxJournalBytes: MAX_JOURNAL_BYTES
  }
}

/**
 * A tenant's limits for each of its end users (the `userId` of the tokens), per UTC day; an
 * absent field is no limit of its own (the tenant's quotas still apply to the sum).
 */
export const PerUserQuotasSchema = Type.Object({
  executionsPerDay: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Executions one user may start a UTC day' })),
  toolCallsPerDay: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Tool calls one user\'s runs may make a UTC day' })),
  cpuSecondsPerDay: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Isolate CPU seconds one user\'s runs may use a UTC day' }))
}, { additionalProperties: false, description: 'Daily limits for each end user of the tenant; absent fields are unlimited' })
export type PerUserQuotas = Static<typeof PerUserQuotasSchema>

export function quotasFor (tier: Tier, overrides: QuotaOverrides = {}): TenantQuotas {
  const quotas = { ...TIER_QUOTAS[tier] }
  for (const key of Object.keys(quotas) as Array<keyof TenantQuotas>) {
    const value = overrides[key]
    if (typeof value === 'number') quotas[key] = value
  }
  return quotas
}

/**
 * What one data:update or data:delete call may write, per tier: a call over either bound is
 * refused whole (nothing written). One call rewriting a tenant's every document was enough to
 * grow the table by gigabytes in minutes (issue #28). Not a quota override: the database's to bound.
 */
export interface TierWriteLimits {
  maxRowsWrittenPerCall: number
  /** The JSON text of the documents written (an update: their new bodies; a delete: the bodies removed). */
  maxBytesWrittenPerCall: number
}

export const TIER_WRITE_LIMITS: Record<Tier, TierWriteLimits> = {
  free: { maxRowsWrittenPerCall: 100, maxBytesWrittenPerCall: 1 * MB },
  starter: { maxRowsWrittenPerCall: 1000, maxBytesWrittenPerCall: 10 * MB },
  enterprise: { maxRowsWrittenPerCall: 10_000, maxBytesWrittenPerCall: 100 * MB }
}
