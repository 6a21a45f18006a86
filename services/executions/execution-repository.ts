// The executions table, always as one tenant (RLS sees only that tenant's rows): in a tenant
// transaction, or as one statement sent with the tenant's settings (statementAsTenant).
import { sql, type Kysely } from 'kysely'
import { statementAsTenant, withTenant, type AppDatabase, type TenantTrx } from '../db/with-tenant.ts'
import type { Database, ExecutionRow, ExecutionStatus } from '../db/schema.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import type { RunRecord } from './execution-records.ts'
import type { ListFilter } from './list-filter.ts'

export const FINISHED: ReadonlySet<ExecutionStatus> = new Set(['succeeded', 'failed', 'cancelled'])

/** An idempotency key holds for this long; after it the same key makes a new execution. */
export const IDEMPOTENCY_WINDOW_HOURS = 24

/**
 * Writes an ended run's row from its record (the row is written once, by whoever ended the run,
 * or by the sweep). A row already there (a write retried after its answer was lost) is left as
 * it is. Without a key it is one INSERT, sent with the tenant's settings in one round trip.
 */
export async function insertFinishedExecution (db: AppDatabase, record: RunRecord): Promise<void> {
  const key = record.idempotencyKey
  if (key === undefined) {
    await statementAsTenant(db, record.tenantId, insertFinished(db.kysely, record, null).compile())
    return
  }
  await withTenant(db, record.tenantId, async (trx) => {
    // An expired key is let go, so the unique constraint only ever sees keys still in force.
    await trx.updateTable('executions').set({ idempotency_key: null })
      .where('idempotency_key', '=', key)
      .where('submitted_at', '<', sql<Date>`now() - make_interval(hours => ${IDEMPOTENCY_WINDOW_HOURS})`)
      .execute()
    const inserted = await insertFinished(trx, record, key).returning('execution_id').executeTakeFirst()
    if (inserted !== undefined || await getExecution(trx, record.executionId) !== undefined) return
    // The key's record in Redis is what decides; a row from before that record (Redis lost it)
    // keeps the key, and this run is stored without it rather than not at all.
    await insertFinished(trx, record, null).execute()
  })
}

function insertFinished (kysely: Kysely<Database>, record: RunRecord, key: string | null) {
  return kysely.insertInto('executions').values({
    tenant_id: record.tenantId,
    execution_id: record.executionId,
    user_id: record.userId,
    status: record.status,
    idempotency_key: key,
    code_sha256: record.codeSha256,
    request_sha256: record.requestSha256 ?? null,
    timeout_ms: record.timeoutMs,
    submitted_at: record.submittedAt,
    started_at: record.startedAt ?? null,
    finished_at: record.finishedAt ?? null,
    result: record.result === undefined ? null : JSON.stringify(record.result)
  }).onConflict((oc) => oc.doNothing())
}

export async function getExecution (trx: TenantTrx, executionId: string): Promise<ExecutionRow | undefined> {
  return await trx.selectFrom('executions').selectAll().where('execution_id', '=', executionId).executeTakeFirst()
}

/** Where a page starts: after the run submitted at `submittedAt` with this id (newest first). */
export interface ListCursor { submittedAt: Date, executionId: string }

export async function listExecutions (trx: TenantTrx, options: ListFilter & { limit: number, before?: ListCursor }): Promise<ExecutionRow[]> {
  let query = trx.selectFrom('executions').selectAll()
  if (options.status !== undefined) query = query.where('status', '=', options.status)
  if (options.from !== undefined) query = query.where('submitted_at', '>=', options.from)
  if (options.to !== undefined) query = query.where('submitted_at', '<', options.to)
  // OK: a success; another code: the result's error code (a finished run's row holds its result).
  if (options.code === 'OK') query = query.where('status', '=', 'succeeded')
  else if (options.code !== undefined) query = query.where(sql<string>`result->'error'->>'code'`, '=', options.code)
  const cursor = options.before
  if (cursor !== undefined) {
    query = query.where((eb) => eb.or([
      eb('submitted_at', '<', cursor.submittedAt),
      eb.and([eb('submitted_at', '=', cursor.submittedAt), eb('execution_id', '<', cursor.executionId)])
    ]))
  }
  return await query.orderBy('submitted_at', 'desc').orderBy('execution_id', 'desc').limit(options.limit).execute()
}

export function statusOf (result: ExecutionResult): ExecutionStatus {
  if (result.success) return 'succeeded'
  return result.error?.code === 'CANCELLED' ? 'cancelled' : 'failed'
}

/** Deletes this tenant's executions finished before `cutoff`; how many went. */
export async function pruneExecutions (trx: TenantTrx, cutoff: Date): Promise<number> {
  const deleted = await trx.deleteFrom('executions').where('finished_at', '<', cutoff).executeTakeFirst()
  return Number(deleted.numDeletedRows)
}

/** Whether the tenant has any executions left (a tenant with none leaves the pruning list). */
export async function hasExecutions (trx: TenantTrx): Promise<boolean> {
  const row = await trx.selectFrom('executions').select('execution_id').limit(1).executeTakeFirst()
  return row !== undefined
}
