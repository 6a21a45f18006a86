// Where a run waiting for approval keeps its journal between starts: PostgreSQL
// (execution_journals, forced RLS), so the wait survives a restart of every instance and of
// Redis' records alike. The row also holds the run's job (code, language, permissions): a
// later start is a new job, and the first one is gone from the queue by then. The row is
// written when a start suspends, changed by decisions, read before each later start and
// deleted when the run ends.
import { sql } from 'kysely'
import { withTenant, type AppDatabase, type TenantTrx } from '../../db/with-tenant.ts'
import type { ExecutionJob } from '../execution-queue.ts'
import type { RunJournal } from './run-journal.ts'

/** What a later start of a waiting run needs: everything of its first job but the start number. */
export type StoredJob = Omit<ExecutionJob, 'start'>

export interface StoredJournal { journal: RunJournal, job: StoredJob, expiresAt: Date }

const jsonOf = (value: unknown): string => JSON.stringify(value)
const parsed = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T

/** Keeps (or replaces) the journal of a run that just suspended, and when it expires undecided. */
export async function saveJournal (db: AppDatabase, tenantId: string, executionId: string, stored: StoredJournal): Promise<void> {
  await withTenant(db, tenantId, async (trx) => {
    await trx.insertInto('execution_journals').values({
      tenant_id: tenantId,
      execution_id: executionId,
      journal: jsonOf(stored.journal),
      job: jsonOf(stored.job),
      expires_at: stored.expiresAt,
      updated_at: sql<Date>`now()`
    }).onConflict((oc) => oc.columns(['tenant_id', 'execution_id']).doUpdateSet({
      journal: sql`excluded.journal`,
      job: sql`excluded.job`,
      expires_at: sql`excluded.expires_at`,
      updated_at: sql<Date>`now()`
    })).execute()
  })
}

export async function loadJournal (db: AppDatabase, tenantId: string, executionId: string): Promise<StoredJournal | undefined> {
  return await withTenant(db, tenantId, async (trx) => await readJournal(trx, executionId, false))
}

/** The journal in a tenant transaction; `forUpdate` holds its row until the transaction ends (decisions). */
export async function readJournal (trx: TenantTrx, executionId: string, forUpdate: boolean): Promise<StoredJournal | undefined> {
  let query = trx.selectFrom('execution_journals').select(['journal', 'job', 'expires_at']).where('execution_id', '=', executionId)
  if (forUpdate) query = query.forUpdate()
  const row = await query.executeTakeFirst()
  return row === undefined ? undefined : { journal: parsed<RunJournal>(row.journal), job: parsed<StoredJob>(row.job), expiresAt: new Date(row.expires_at) }
}

export async function writeJournal (trx: TenantTrx, executionId: string, journal: RunJournal): Promise<void> {
  await trx.updateTable('execution_journals').set({ journal: jsonOf(journal), updated_at: sql<Date>`now()` }).where('execution_id', '=', executionId).execute()
}

/** The run ended: its journal goes (its decisions stay, in approval_decisions). */
export async function deleteJournal (db: AppDatabase, tenantId: string, executionId: string): Promise<void> {
  await withTenant(db, tenantId, async (trx) => { await trx.deleteFrom('execution_journals').where('execution_id', '=', executionId).execute() })
}

/**
 * Journals left behind: a waiting run ends by its expiry at the latest, and its end deletes its
 * journal, so one past `before` (well after its expiry) belongs to no run (its delete failed, or
 * Redis lost the run's record). Answers how many went.
 */
export async function pruneJournals (trx: TenantTrx, before: Date): Promise<number> {
  const deleted = await trx.deleteFrom('execution_journals').where('expires_at', '<', before).executeTakeFirst()
  return Number(deleted.numDeletedRows)
}

/** Whether the tenant has a journal left (a tenant with one stays on retention's list). */
export async function hasJournals (trx: TenantTrx): Promise<boolean> {
  return await trx.selectFrom('execution_journals').select('execution_id').limit(1).executeTakeFirst() !== undefined
}
