import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type Json<T> = ColumnType<T, string | T, string | T>

export interface TenantsTable {
  tenant_id: string
  name: string | null
  tier: 'free' | 'starter' | 'enterprise'
  quota_overrides: Json<Record<string, number>>
  /** Daily limits for each end user of the tenant (migration 010); {} when none. */
  per_user_quotas: ColumnType<Record<string, number>, string | undefined, string>
  /** The sandbox modules its scripts may import (migration 012); null: all the build offers. */
  sandbox_modules: ColumnType<string[] | null, string | null | undefined, string | null>
  created_at: Timestamp
  updated_at: Timestamp
}

export interface TenantToolsTable {
  tenant_id: string
  tool: string
  enabled: boolean
  rate_limit: Json<{ calls: number, windowMs: number } | null>
  config: Json<Record<string, unknown>>
  /** null: the tool's default. */
  approval: 'never' | 'always' | null
  updated_at: Timestamp
}

export interface DocumentsTable {
  tenant_id: string
  collection: string
  id: Generated<string>
  body: Json<Record<string, unknown>>
  created_by: string
  created_at: Timestamp
}

export interface AuditLogTable {
  tenant_id: string
  /** Internal: one sequence for all tenants, never shown to a client. */
  id: Generated<string>
  /** What clients see as the entry's id: random, reveals nothing. */
  public_id: Generated<string>
  execution_id: string
  user_id: string
  action: 'code_execution' | 'execution_refused' | 'mcp.execute'
  code_sha256: string | null
  success: boolean
  error_code: string | null
  duration_ms: number | null
  tool_calls: number
  /** The run's meter (009); null for refusals and rows written before it. */
  cpu_ms: number | null
  peak_heap_bytes: ColumnType<string | null, number | null, number | null>
  tool_time_ms: number | null
  bytes_in: ColumnType<string | null, number | null, number | null>
  bytes_out: ColumnType<string | null, number | null, number | null>
  created_at: Timestamp
}

type Sum = ColumnType<string, number | string, number | string>

/** Per tenant, UTC day and user: the sums of its runs (refusals not counted), kept by the audit writer. */
export interface UsageDailyTable {
  tenant_id: string
  day: ColumnType<Date | string, string, string>
  user_id: string
  executions: Sum
  failures: Sum
  tool_calls: Sum
  cpu_ms: Sum
  wall_ms: Sum
  bytes_in: Sum
  bytes_out: Sum
  /** Runs per duration bucket (services/audit/duration-histogram.ts). */
  duration_histogram: ColumnType<number[], number[], number[]>
}

/** awaiting_approval: a queued run stopped at a gated tool call until a person decides (no isolate, no slot). */
export type ExecutionStatus = 'queued' | 'running' | 'awaiting_approval' | 'succeeded' | 'failed' | 'cancelled'

export interface ExecutionsTable {
  tenant_id: string
  execution_id: string
  user_id: string
  status: ExecutionStatus
  idempotency_key: string | null
  code_sha256: string
  /** SHA-256 of the request an idempotency key was given with; null without a key (and before 008). */
  request_sha256: string | null
  timeout_ms: number
  submitted_at: Timestamp
  started_at: Timestamp | null
  finished_at: Timestamp | null
  result: Json<unknown> | null
}

export interface PlatformToolsTable {
  name: string
  description: string
  args_schema: Json<Record<string, unknown>>
  result_schema: Json<Record<string, unknown> | null>
  http: Json<{ method: string, url: string, timeoutMs: number, maxResponseKB: number }>
  default_enabled: boolean
  approval: Generated<'never' | 'always'>
  version: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
}

export interface ToolCallsTable {
  tenant_id: string
  execution_id: string
  call_index: number
  tool: string
  code: string
  duration_ms: number
  args_sha256: string
  args_bytes: number
  result_bytes: number | null
  upstream_status: number | null
  created_at: Timestamp
}

/**
 * A suspended run's record of its tool calls and drawn values (migration 013), with what a
 * later start needs to run it again (the job: code, language, permissions); deleted at its end.
 */
export interface ExecutionJournalsTable {
  tenant_id: string
  execution_id: string
  journal: Json<unknown>
  job: Json<unknown>
  /** An undecided run ends APPROVAL_EXPIRED at this time. */
  expires_at: Timestamp
  updated_at: Timestamp
  /** What the row is charged in its tenant's storage (migration 014): its journal's and job's JSON text. */
  bytes: ColumnType<string | number, number | undefined, number>
}

/** One person's decision on one gated call (migration 013): the approvals' audit, kept after the run. */
export interface ApprovalDecisionsTable {
  tenant_id: string
  execution_id: string
  call_id: string
  tool: string
  approve: boolean
  reason: string | null
  decided_by: string
  decided_at: Timestamp
}

/** What a tenant keeps: its documents' count and bytes, kept with every write (migration 010). */
export interface TenantStorageTable {
  tenant_id: string
  /** bigint: the driver answers a string. */
  bytes: ColumnType<string | number, number | undefined, number>
  documents: ColumnType<string | number, number | undefined, number>
  updated_at: Timestamp
}

export interface Database {
  tenants: TenantsTable
  tenant_tools: TenantToolsTable
  documents: DocumentsTable
  audit_log: AuditLogTable
  platform_tools: PlatformToolsTable
  tool_calls: ToolCallsTable
  executions: ExecutionsTable
  usage_daily: UsageDailyTable
  tenant_storage: TenantStorageTable
  execution_journals: ExecutionJournalsTable
  approval_decisions: ApprovalDecisionsTable
}

export type TenantRow = Selectable<TenantsTable>
export type TenantToolRow = Selectable<TenantToolsTable>
export type DocumentRow = Selectable<DocumentsTable>
export type AuditRow = Selectable<AuditLogTable>
export type NewAuditRow = Insertable<AuditLogTable>
export type ExecutionRow = Selectable<ExecutionsTable>
