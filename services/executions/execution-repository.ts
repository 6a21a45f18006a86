// The executions table, always as one tenant (RLS sees only that tenant's rows): in a tenant
// transaction, or as one statement sent with the tenant's settings (statementAsTenant).
import { sql, type Kysely } from 'kysely'
import { statementAsTenant, withTenant, type AppDatabase, type TenantTrx } from '../db/with-tenant.ts'
import type { Database, ExecutionRow, ExecutionStatus } from '../db/schema.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import type { ListFilter } from './list-filter.ts'

export const FINISHED: ReadonlySet<ExecutionStatus> = new Set(['succeeded', 'failed', 'cancelled'])

/** An idempotency key holds for this long; after it the same key makes a new execution. */
export const IDEMPOTENCY_WINDOW_HOURS = 24

export interface NewExecution {
  tenantId: string
  executionId: string
  userId: string
  timeoutMs: number
  codeSha256: string
  idempotencyKey: string | undefined
  /** With a key: the SHA-256 of the request (requestSha256 in execution-request.ts). */
  requestSha256?: string
}

/**
 * Inserts a queued execution, or finds the one the same idempotency key made within 24 h.
 * `created` false: another submission (maybe a concurrent one) owns the key; its row is returned.
 * Without a key it is one INSERT, sent with the tenant's settings in one round trip.
 */
export async function insertExecution (db: AppDatabase, row: NewExecution): Promise<{ created: boolean, row: ExecutionRow }> {
  const key = row.idempotencyKey
  if (key === undefined) {
    const [inserted] = await statementAsTenant(db, row.tenantId, insertQueued(db.kysely, row).compile())
    if (inserted === undefined) throw new Error('the queued execution was not inserted')
    return { created: true, row: inserted }
  }
  return await withTenant(db, row.tenantId, async (trx) => {
    // An expired key is let go, so the unique constraint only ever sees keys still in force.
    await trx.updateTable('executions').set({ idempotency_key: null })
      .where('idempotency_key', '=', key)
      .where('submitted_at', '<', sql<Date>`now() - make_interval(hours => ${IDEMPOTENCY_WINDOW_HOURS})`)
      .execute()
    const inserted = await insertQueued(trx, row).executeTakeFirst()
    if (inserted !== undefined) return { created: true, row: inserted }
    const existing = await trx.selectFrom('executions').selectAll().where('idempotency_key', '=', key).executeTakeFirstOrThrow()
    return { created: false, row: existing }
  })
}

function insertQueued (kysely: Kysely<Database>, row: NewExecution) {
  return kysely.insertInto('executions').values({
    tenant_id: row.tenantId,
    execution_id: row.executionId,
    user_id: row.userId,
    status: 'queued',
    idempotency_key: row.idempotencyKey ?? null,
    code_sha256: row.codeSha256,
    request_sha256: row.requestSha256 ?? null,
    timeout_ms: row.timeoutMs
  }).onConflict((oc) => oc.columns(['tenant_id', 'idempotency_key']).doNothing()).returningAll()
}

export async function getExecution (trx: TenantTrx, executionId: string): Promise<ExecutionRow | undefined> {
  return await trx.selectFrom('executions').selectAll().where('execution_id', '=', executionId).executeTakeFirst()
}

export async function deleteExecution (trx: TenantTrx, executionId: string): Promise<void> {
  await trx.deleteFrom('executions').where('execution_id', '=', executionId).execute()
}

export async function listExecutions (trx: TenantTrx, options: ListFilter & { limit: number, before?: string }): Promise<ExecutionRow[]> {
  let query = trx.selectFrom('executions').selectAll()
  if (options.status !== undefined) query = query.where('status', '=', options.status)
  if (options.from !== undefined) query = query.where('submitted_at', '>=', options.from)
  if (options.to !== undefined) query = query.where('submitted_at', '<', options.to)
  // OK: a success; another code: the result's error code (a finished run's row holds its result).
  if (options.code === 'OK') query = query.where('status', '=', 'succeeded')
  else if (options.code !== undefined) query = query.where(sql<string>`result->'error'->>'code'`, '=', options.code)
  if (options.before !== undefined) {
    const cursor = await getExecution(trx, options.before)
    if (cursor === undefined) return []
    query = query.where((eb) => eb.or([
      eb('submitted_at', '<', cursor.submitted_at),
      eb.and([eb('submitted_at', '=', cursor.submitted_at), eb('execution_id', '<', cursor.execution_id)])
    ]))
  }
  return await query.orderBy('submitted_at', 'desc').orderBy('execution_id', 'desc').limit(options.limit).execute()
}

/** queued → running; false when it is no longer queued (cancelled, or failed as lost). One statement, one round trip. */
export async function markRunning (db: AppDatabase, tenantId: string, executionId: string): Promise<boolean> {
  const updated = await statementAsTenant(db, tenantId, db.kysely.updateTable('executions').set({ status: 'running', started_at: sql<Date>`now()` })
    .where('execution_id', '=', executionId).where('status', '=', 'queued').returning('execution_id').compile())
  return updated.length > 0
}

export function statusOf (result: ExecutionResult): ExecutionStatus {
  if (result.success) return 'succeeded'
  return result.error?.code === 'CANCELLED' ? 'cancelled' : 'failed'
}

/**
 * Records the result, only if the execution is still in one of `from`: whoever finishes it first
 * (its worker, a cancel of a queued run, the lost-run check) wins, and only the winner sends `final`.
 */
export async function finishExecution (trx: TenantTrx, executionId: string, result: ExecutionResult, from: ExecutionStatus[]): Promise<boolean> {
  const updated = await finishQuery(trx, executionId, result, from).executeTakeFirst()
  return updated.numUpdatedRows > 0n
}

/** finishExecution as one statement with the tenant's settings: one round trip, no transaction. */
export async function finishExecutionAsTenant (db: AppDatabase, tenantId: string, executionId: string, result: ExecutionResult, from: ExecutionStatus[]): Promise<boolean> {
  const updated = await statementAsTenant(db, tenantId, finishQuery(db.kysely, executionId, result, from).returning('execution_id').compile())
  return updated.length > 0
}

function finishQuery (kysely: Kysely<Database>, executionId: string, result: ExecutionResult, from: ExecutionStatus[]) {
  return kysely.updateTable('executions')
    .set({ status: statusOf(result), finished_at: sql<Date>`now()`, result: JSON.stringify(result) })
    .where('execution_id', '=', executionId).where('status', 'in', from)
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
