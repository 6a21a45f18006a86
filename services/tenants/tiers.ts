import { Type, type Static } from 'typebox'

export const TIERS = ['free', 'starter', 'enterprise'] as const
export type Tier = typeof TIERS[number]
export const TierSchema = Type.Enum([...TIERS])

const Quota = Type.Integer({ minimum: 0, maximum: 1_000_000_000 })
export const TenantQuotasSchema = Type.Object({
  maxExecutionsPerDay: Quota,
  maxExecutionDurationMs: Quota,
  maxConcurrentExecutions: Quota,
  maxToolCallsPerExecution: Quota,
  maxToolCallsPerDay: Quota,
  maxMemoryMB: Quota,
  maxCodeSizeKB: Quota,
  maxOutputSizeKB: Quota
}, { additionalProperties: false })
export type TenantQuotas = Static<typeof TenantQuotasSchema>

/** Per-tenant overrides: any subset of the quotas. */
export const QuotaOverridesSchema = Type.Partial(TenantQuotasSchema, { additionalProperties: false })
export type QuotaOverrides = Static<typeof QuotaOverridesSchema>

// Exactly the guide's TIER_QUOTAS.
export const TIER_QUOTAS: Record<Tier, TenantQuotas> = {
  free: {
    maxExecutionsPerDay: 100,
    maxExecutionDurationMs: 5000,
    maxConcurrentExecutions: 1,
    maxToolCallsPerExecution: 10,
    maxToolCallsPerDay: 500,
    maxMemoryMB: 32,
    maxCodeSizeKB: 50,
    maxOutputSizeKB: 100
  },
  starter: {
    maxExecutionsPerDay: 1000,
    maxExecutionDurationMs: 30000,
    maxConcurrentExecutions: 5,
    maxToolCallsPerExecution: 50,
    maxToolCallsPerDay: 10000,
    maxMemoryMB: 64,
    maxCodeSizeKB: 100,
    maxOutputSizeKB: 500
  },
  enterprise: {
    maxExecutionsPerDay: 100000,
    maxExecutionDurationMs: 300000,
    maxConcurrentExecutions: 100,
    maxToolCallsPerExecution: 500,
    maxToolCallsPerDay: 1000000,
    maxMemoryMB: 256,
    maxCodeSizeKB: 500,
    maxOutputSizeKB: 5000
  }
}

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

const MB = 1024 * 1024
export const TIER_WRITE_LIMITS: Record<Tier, TierWriteLimits> = {
  free: { maxRowsWrittenPerCall: 100, maxBytesWrittenPerCall: 1 * MB },
  starter: { maxRowsWrittenPerCall: 1000, maxBytesWrittenPerCall: 10 * MB },
  enterprise: { maxRowsWrittenPerCall: 10_000, maxBytesWrittenPerCall: 100 * MB }
}
