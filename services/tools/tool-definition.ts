import type { TSchema } from 'typebox'
import type { AppDatabase, TenantTrx } from '../db/with-tenant.ts'
import type { RunBounds } from '../db/run-bounds.ts'
import type { PerUserQuotas, TenantQuotas, Tier } from '../tenants/tiers.ts'
import type { McpToolSpec } from './mcp-tool-client.ts'

/** Who is calling a tool: the run's tenant, user, token permissions and quotas. */
export interface ToolCaller {
  tenantId: string
  userId: string
  permissions: string[]
  quotas: TenantQuotas
  /** The tenant's tier, for bounds that are not quotas (TIER_WRITE_LIMITS); absent: the free tier's. */
  tier?: Tier
  /** The tenant's daily limits for each of its users; absent: none. */
  perUser?: PerUserQuotas
}

/** Bounds every tool honours while it works, so no call can hold more than the host allows. */
export interface ToolLimits {
  /** Largest result, in JSON bytes (TOOL_RESULT_MAX_BYTES). */
  maxResultBytes: number
}

/**
 * A call refused by a bound the script should know: its message names the limit and reaches the
 * script (a catchable TOOL_ERROR), unlike other tool failures, whose details stay on the host.
 */
export class ToolLimitError extends Error {
  override name = 'ToolLimitError'
}

/** A result over ToolLimits.maxResultBytes. */
export class ToolResultTooLargeError extends ToolLimitError {
  override name = 'ToolResultTooLargeError'
  readonly limit: number

  constructor (tool: string, limit: number) {
    super(`Result of ${tool} exceeds the tool result limit of ${limit} bytes (TOOL_RESULT_MAX_BYTES); ask for fewer or smaller documents`)
    this.limit = limit
  }
}

/** A data:update or data:delete over its tier's TIER_WRITE_LIMITS: nothing was written. */
export class ToolWriteLimitError extends ToolLimitError {
  override name = 'ToolWriteLimitError'
}

/** Whether a call of the tool waits for a person's decision first (queued runs only). */
export const APPROVAL_MODES = ['never', 'always'] as const
export type ApprovalMode = typeof APPROVAL_MODES[number]

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
export type HttpMethod = typeof HTTP_METHODS[number]

/** Where a platform (HTTP) tool sends its calls; docs/api.md "Platform tools". */
export interface HttpToolSpec {
  method: HttpMethod
  /** Absolute; `{param}` placeholders are filled from the args, percent-encoded. */
  url: string
  timeoutMs: number
  maxResponseKB: number
  /** Args sent in the query string even for POST/PUT/PATCH (OpenAPI query parameters). */
  queryArgs?: string[]
  /** The arg whose value is the whole JSON body (OpenAPI requestBody); else the rest of the args. */
  bodyArg?: string
  /** A remote MCP server's tool: `url` is its MCP endpoint and calls go through the MCP client. */
  mcp?: McpToolSpec
}

/**
 * A host tool scripts can call. A built-in's `run` gets a transaction already scoped to the
 * caller's tenant (or its `runAsTenant` scopes its one statement itself); a platform tool has
 * `http` instead and runs through the gateway's HTTP runner.
 */
export interface ToolDefinition {
  name: string
  description: string
  argsSchema: TSchema
  /**
   * JSON Schema of the result (TypeBox schemas are JSON Schema): typed in /api/tools.d.ts; a
   * platform tool's answer is checked against it.
   */
  resultSchema?: Record<string, unknown>
  /** Whether a tenant with no setting for the tool may use it; built-ins: true. */
  defaultEnabled?: boolean
  /** The platform's default for approvals; a tenant's setting may override it. Absent: never. */
  approval?: ApprovalMode
  /** Present on platform tools only. */
  http?: HttpToolSpec
  /** A platform tool's stored version (grows with every write; restarts when the tool is re-created). */
  version?: number
  /** A built-in's work, in a transaction scoped to the caller's tenant (withTenant). */
  run?: (trx: TenantTrx, caller: ToolCaller, args: unknown, config: Record<string, unknown>, limits: ToolLimits) => Promise<unknown>
  /**
   * Instead of `run`, for a built-in that reads with one statement: it scopes that statement to
   * the caller's tenant itself (statementAsTenant), which saves the transaction's round trips.
   */
  runAsTenant?: (db: AppDatabase, caller: ToolCaller, args: unknown, config: Record<string, unknown>, limits: ToolLimits, bounds?: RunBounds) => Promise<unknown>
}
