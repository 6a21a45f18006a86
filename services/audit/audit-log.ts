import { sql } from 'kysely'
import type { TenantTrx } from '../db/with-tenant.ts'
import type { AuditFacts } from './audit-writer.ts'

/** An audit row as the tenant reads it back. */
export interface AuditLogEntry extends AuditFacts {
  id: string
  createdAt: string
}

/**
 * The tenant's entries, newest first by the time they happened (then by the internal id);
 * `before` is an entry's public id from an earlier page: only entries older than that one are
 * listed. RLS scopes it. The internal id only breaks ties and never leaves this function.
 */
export async function listAuditEntries (trx: TenantTrx, options: { limit: number, before?: string }): Promise<AuditLogEntry[]> {
  let query = trx.selectFrom('audit_log')
    .select([
      sql<string>`public_id::text`.as('public_id'), 'execution_id', 'user_id', 'action', 'code_sha256', 'success', 'error_code', 'duration_ms', 'tool_calls', 'created_at'
    ])
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
  return rows.map((row) => ({
    id: row.public_id,
    executionId: row.execution_id,
    userId: row.user_id,
    action: row.action,
    codeSha256: row.code_sha256,
    success: row.success,
    errorCode: row.error_code,
    durationMs: row.duration_ms,
    toolCalls: row.tool_calls,
    createdAt: new Date(row.created_at).toISOString()
  }))
}
