import { sql } from 'kysely'
import type { TenantTrx } from '../db/with-tenant.ts'
import type { AuditFacts, ToolCallEntry } from './audit-writer.ts'

/** An audit row as the tenant reads it back. */
export interface AuditLogEntry extends Omit<AuditFacts, 'meter'> {
  id: string
  /** The run's meter; null for refusals and rows written before it was kept. */
  cpuMs: number | null
  peakHeapBytes: number | null
  toolTimeMs: number | null
  bytesIn: number | null
  bytesOut: number | null
  createdAt: string
}

const ENTRY_COLUMNS = [
  sql<string>`public_id::text`.as('public_id'), 'execution_id', 'user_id', 'action', 'code_sha256', 'success', 'error_code', 'duration_ms', 'tool_calls',
  'cpu_ms', 'peak_heap_bytes', 'tool_time_ms', 'bytes_in', 'bytes_out', 'created_at'
] as const

/**
 * The tenant's entries, newest first by the time they happened (then by the internal id);
 * `before` is an entry's public id from an earlier page: only entries older than that one are
 * listed. RLS scopes it. The internal id only breaks ties and never leaves this function.
 */
export async function listAuditEntries (trx: TenantTrx, options: { limit: number, before?: string }): Promise<AuditLogEntry[]> {
  let query = trx.selectFrom('audit_log')
    .select(ENTRY_COLUMNS)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(options.limit)
  if (options.before !== undefined) {
    const before = options.before
    query = query.where(({ eb, refTuple, selectFrom }) => eb(
      refTuple('created_at', 'id'),
      '<',
      selectFrom('audit_log as cursor').select(['cursor.created_at', 'cursor.id']).where('cursor.public_id', '=', before).$asTuple('created_at', 'id')
    ))
  }
  const rows = await query.execute()
  return rows.map(toEntry)
}

const count = (value: string | null): number | null => value === null ? null : Number(value)

function toEntry (row: {
  public_id: string,
  execution_id: string,
  user_id: string,
  action: AuditFacts['action'],
  code_sha256: string | null,
  success: boolean,
  error_code: string | null,
  duration_ms: number | null,
  tool_calls: number,
  cpu_ms: number | null,
  peak_heap_bytes: string | null,
  tool_time_ms: number | null,
  bytes_in: string | null,
  bytes_out: string | null,
  created_at: Date
}): AuditLogEntry {
  return {
    id: row.public_id,
    executionId: row.execution_id,
    userId: row.user_id,
    action: row.action,
    codeSha256: row.code_sha256,
    success: row.success,
    errorCode: row.error_code,
    durationMs: row.duration_ms,
    toolCalls: row.tool_calls,
    cpuMs: row.cpu_ms,
    peakHeapBytes: count(row.peak_heap_bytes),
    toolTimeMs: row.tool_time_ms,
    bytesIn: count(row.bytes_in),
    bytesOut: count(row.bytes_out),
    createdAt: new Date(row.created_at).toISOString()
  }
}

/** A tool call as the tenant reads it back: the written row without the ids the route already knows. */
export type ToolCallRecord = Omit<ToolCallEntry, 'tenantId' | 'executionId' | 'createdAt'> & { createdAt: string }

/** A decision on one of a run's gated calls, with who made it. */
export interface ApprovalDecisionRecord { callId: string, tool: string, approve: boolean, reason: string | null, decidedBy: string, decidedAt: string }

/** One execution's audit entry, its tool calls in call order and its approvals; undefined when RLS hides it. */
export async function getExecutionAudit (trx: TenantTrx, executionId: string): Promise<{ entry: AuditLogEntry, toolCalls: ToolCallRecord[], approvals: ApprovalDecisionRecord[] } | undefined> {
  const row = await trx.selectFrom('audit_log').select(ENTRY_COLUMNS).where('execution_id', '=', executionId).executeTakeFirst()
  if (row === undefined) return undefined
  const calls = await trx.selectFrom('tool_calls')
    .select(['call_index', 'tool', 'code', 'duration_ms', 'args_sha256', 'args_bytes', 'result_bytes', 'upstream_status', 'created_at'])
    .where('execution_id', '=', executionId)
    .orderBy('call_index')
    .execute()
  const decisions = await trx.selectFrom('approval_decisions')
    .select(['call_id', 'tool', 'approve', 'reason', 'decided_by', 'decided_at'])
    .where('execution_id', '=', executionId)
    .orderBy('decided_at').orderBy('call_id')
    .execute()
  return {
    entry: toEntry(row),
    approvals: decisions.map((d) => ({ callId: d.call_id, tool: d.tool, approve: d.approve, reason: d.reason, decidedBy: d.decided_by, decidedAt: new Date(d.decided_at).toISOString() })),
    toolCalls: calls.map((c) => ({
      callIndex: c.call_index,
      tool: c.tool,
      code: c.code,
      durationMs: c.duration_ms,
      argsSha256: c.args_sha256,
      argsBytes: c.args_bytes,
      resultBytes: c.result_bytes,
      upstreamStatus: c.upstream_status,
      createdAt: new Date(c.created_at).toISOString()
    }))
  }
}
