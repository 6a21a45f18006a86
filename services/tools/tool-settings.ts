import { Type, type Static } from 'typebox'
import type { TenantTrx } from '../db/with-tenant.ts'
import { APPROVAL_MODES, type ApprovalMode } from './tool-definition.ts'

export const ToolRateLimitSchema = Type.Object({
  calls: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  windowMs: Type.Integer({ minimum: 100, maximum: 86_400_000 })
}, { additionalProperties: false })
export type ToolRateLimit = Static<typeof ToolRateLimitSchema>

export const ApprovalModeSchema = Type.Enum([...APPROVAL_MODES], { description: 'always: each call waits for a decision (POST /api/executions/:id/approvals); never: calls run at once' })

/** One tenant's setting for one tool, as stored in tenant_tools. */
export interface ToolSetting {
  tool: string
  enabled: boolean
  rateLimit: ToolRateLimit | null
  config: Record<string, unknown>
  /** The tenant's override of the tool's approval default; null follows the default. */
  approval: ApprovalMode | null
  updatedAt: string
}

/**
 * A PUT's fields: each one absent keeps what is stored (or, for a tool with no setting yet, the
 * default: its defaultEnabled, no rate limit, an empty config, its approval default).
 */
export interface ToolSettingUpdate {
  enabled?: boolean
  rateLimit?: ToolRateLimit | null
  config?: Record<string, unknown>
  approval?: ApprovalMode | null
}

const COLUMNS = ['tool', 'enabled', 'rate_limit', 'config', 'approval', 'updated_at'] as const

function toSetting (row: { tool: string, enabled: boolean, rate_limit: ToolRateLimit | null, config: Record<string, unknown>, approval: ApprovalMode | null, updated_at: Date }): ToolSetting {
  return { tool: row.tool, enabled: row.enabled, rateLimit: row.rate_limit, config: row.config, approval: row.approval, updatedAt: new Date(row.updated_at).toISOString() }
}

export async function listToolSettings (trx: TenantTrx): Promise<ToolSetting[]> {
  const rows = await trx.selectFrom('tenant_tools').select(COLUMNS).orderBy('tool').execute()
  return rows.map(toSetting)
}

export async function putToolSetting (
  trx: TenantTrx,
  tenantId: string,
  tool: string,
  setting: ToolSettingUpdate,
  defaultEnabled: boolean
): Promise<ToolSetting> {
  const given = {
    ...(setting.enabled !== undefined ? { enabled: setting.enabled } : {}),
    ...(setting.rateLimit !== undefined ? { rate_limit: JSON.stringify(setting.rateLimit) } : {}),
    ...(setting.config !== undefined ? { config: JSON.stringify(setting.config) } : {}),
    ...(setting.approval !== undefined ? { approval: setting.approval } : {}),
    updated_at: new Date()
  }
  const row = await trx.insertInto('tenant_tools')
    .values({ tenant_id: tenantId, tool, enabled: defaultEnabled, rate_limit: JSON.stringify(null), config: JSON.stringify({}), approval: null, ...given })
    .onConflict((oc) => oc.columns(['tenant_id', 'tool']).doUpdateSet(given))
    .returning(COLUMNS)
    .executeTakeFirstOrThrow()
  return toSetting(row)
}

/** Removes the tenant's setting; the tool falls back to its default. True when one existed. */
export async function deleteToolSetting (trx: TenantTrx, tool: string): Promise<boolean> {
  const result = await trx.deleteFrom('tenant_tools').where('tool', '=', tool).executeTakeFirst()
  return result.numDeletedRows > 0n
}
