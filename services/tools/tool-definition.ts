import type { TSchema } from 'typebox'
import type { TenantTrx } from '../db/with-tenant.ts'
import type { TenantQuotas } from '../tenants/tiers.ts'

/** Who is calling a tool: the run's tenant, user, token permissions and quotas. */
export interface ToolCaller {
  tenantId: string
  userId: string
  permissions: string[]
  quotas: TenantQuotas
}

/** Bounds every tool honours while it works, so no call can hold more than the host allows. */
export interface ToolLimits {
  /** Largest result, in JSON bytes (TOOL_RESULT_MAX_BYTES). */
  maxResultBytes: number
}

/**
 * A result over ToolLimits.maxResultBytes. Its message names the limit and reaches the script
 * (a catchable TOOL_ERROR), unlike other tool failures, whose details stay on the host.
 */
export class ToolResultTooLargeError extends Error {
  override name = 'ToolResultTooLargeError'
  readonly limit: number

  constructor (tool: string, limit: number) {
    super(`Result of ${tool} exceeds the tool result limit of ${limit} bytes (TOOL_RESULT_MAX_BYTES); ask for fewer or smaller documents`)
    this.limit = limit
  }
}

/** A host tool scripts can call. `run` gets a transaction already scoped to the caller's tenant. */
export interface ToolDefinition {
  name: string
  description: string
  argsSchema: TSchema
  /** JSON Schema of what `run` resolves to (TypeBox schemas are JSON Schema): typed in /api/tools.d.ts. */
  resultSchema?: Record<string, unknown>
  run: (trx: TenantTrx, caller: ToolCaller, args: unknown, config: Record<string, unknown>, limits: ToolLimits) => Promise<unknown>
}
