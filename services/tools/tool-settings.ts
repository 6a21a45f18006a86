import { Type, type Static } from 'typebox'
import type { TenantTrx } from '../db/with-tenant.ts'

export const ToolRateLimitSchema = Type.Object({
  calls: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  windowMs: Type.Integer({ minimum: 100, maximum: 86_400_000 })
}, { additionalProperties: false })
export type ToolRateLimit = Static<typeof ToolRateLimitSchema>

/** One tenant's setting for one tool, as stored in tenant_tools. */
export interface ToolSetting {
  tool: string
  enabled: boolean
  rateLimit: ToolRateLimit | null
  config: Record<string, unknown>
  updatedAt: string
}

export interface ToolSettingUpdate {
  enabled: boolean
  rateLimit?: ToolRateLimit | null
  config?: Record<string, unknown>
}

function toSetting (row: { tool: string, enabled: boolean, rate_limit: ToolRateLimit | null, config: Record<string, unknown>, updated_at: Date }): ToolSetting {
  return { tool: row.tool, enabled: row.enabled, rateLimit: row.rate_limit, config: row.config, updatedAt: new Date(row.updated_at).toISOString() }
}

export async function listToolSettings (trx: TenantTrx): Promise<ToolSetting[]> {
  const rows = await trx.selectFrom('tenant_tools').select(['tool', 'enabled', 'rate_limit', 'config', 'updated_at']).orderBy('tool').execute()
  return rows.map(toSetting)
}

export async function putToolSetting (
  trx: TenantTrx,
  tenantId: string,
  tool: string,
  setting: ToolSettingUpdate
): Promise<ToolSetting> {
  const values = {
    enabled: setting.enabled,
    rate_limit: JSON.stringify(setting.rateLimit ?? null),
    config: JSON.stringify(setting.config ?? {}),
    updated_at: new Date()
  }
  const row = await trx.insertInto('tenant_tools')
    .values({ tenant_id: tenantId, tool, ...values })
    .onConflict((oc) => oc.columns(['tenant_id', 'tool']).doUpdateSet(values))
    .returning(['tool', 'enabled', 'rate_limit', 'config', 'updated_at'])
    .executeTakeFirstOrThrow()
  return toSetting(row)
}

/** Removes the tenant's setting; the tool falls back to its default. True when one existed. */
export async function deleteToolSetting (trx: TenantTrx, tool: string): Promise<boolean> {
  const result = await trx.deleteFrom('tenant_tools').where('tool', '=', tool).executeTakeFirst()
  return result.numDeletedRows > 0n
}
