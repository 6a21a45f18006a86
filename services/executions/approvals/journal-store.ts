// Where a run waiting for approval keeps its journal between starts: PostgreSQL
// (execution_journals, forced RLS), so the wait survives a restart of every instance and of
// Redis' records alike. The row also holds the run's job (code, language, permissions): a
// later start is a new job, and the first one is gone from the queue by then. The row is
// written when a start suspends, changed by decisions, read before each later start and
// deleted when the run ends.
//
// A row's bytes (its journal and job, as PostgreSQL keeps their JSON text) count toward the
// tenant's storage for as long as it is there: each statement that writes or deletes a row moves
// the tenant's counter (tenant_storage, the one documents use) by the same amount, so the
// counter, GET /api/usage and the data tools' bound see them, and a row that would take the
// tenant past its storageBytes is not written (the run cannot wait). The row keeps the bytes it
// was charged (`bytes`), so what its delete frees is exactly what was charged.
import { sql } from 'kysely'
import { withTenant, type AppDatabase, type TenantTrx } from '../../db/with-tenant.ts'
import type { ExecutionJob } from '../execution-queue.ts'
import type { RunJournal } from './run-journal.ts'

/** What a later start of a waiting run needs: everything of its first job but the start number. */
export type StoredJob = Omit<ExecutionJob, 'start'>

export interface StoredJournal { journal: RunJournal, job: StoredJob, expiresAt: Date }

const jsonOf = (value: unknown): string => JSON.stringify(value)
const parsed = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T

/** A journal not kept: it would take the tenant past its storage bound. */
export interface JournalRefused { bytes: number, stored: number, limit: number }

/**
 * Keeps (or replaces) the journal of a run that just suspended, and when it expires undecided,
 * if the tenant's storage has room for it (`storageBytes`: its tier's bound): charged in the same
 * statement, after the row lock on the tenant's counter, so concurrent suspensions and inserts
 * never pass the bound together. Answers what refused it, nothing written, when there is no room.
 */
export async function saveJournal (db: AppDatabase, tenantId: string, executionId: string, stored: StoredJournal, storageBytes: number): Promise<JournalRefused | undefined> {
  const journal = jsonOf(stored.journal)
  const job = jsonOf(stored.job)
  return await withTenant(db, tenantId, async (trx) => {
    const saved = await sql<{ bytes: string }>`
      with sized as (
        select j.journal, j.job, octet_length(j.journal::text) + octet_length(j.job::text) as bytes
        from (select ${journal}::json as journal, ${job}::json as job) as j
      ),
      grown as (select sized.bytes - coalesce((select e.bytes from execution_journals e where e.execution_id = ${executionId}), 0) as n from sized),
      ${charge(tenantId, storageBytes)}
      insert into execution_journals as e (tenant_id, execution_id, journal, job, bytes, expires_at, updated_at)
      select ${tenantId}::text, ${executionId}::uuid, journal, job, bytes, ${stored.expiresAt.toISOString()}::timestamptz, now() from sized where exists (select 1 from charged)
      on conflict (tenant_id, execution_id) do update
        set journal = excluded.journal, job = excluded.job, bytes = excluded.bytes, expires_at = excluded.expires_at, updated_at = now()
      returning e.bytes`.execute(trx)
    if (saved.rows.length > 0) return undefined
    return { bytes: Buffer.byteLength(journal) + Buffer.byteLength(job), stored: await storedBytes(trx, tenantId), limit: storageBytes }
  })
}

/**
 * The CTE `charged` (one row when the tenant's counter took `grown.n` bytes): a row that grows
 * is charged only within `limit`; one that shrinks always frees (never below 0).
 */
function charge (tenantId: string, limit: number) {
  return sql`charged as (
        insert into tenant_storage as s (tenant_id, bytes, documents)
        select ${tenantId}::text, greatest(0, n), 0 from grown where n <= ${limit}::bigint
        on conflict (tenant_id) do update set bytes = greatest(0, s.bytes + (select n from grown)), updated_at = now()
          where (select n from grown) <= 0 or s.bytes + (select n from grown) <= ${limit}::bigint
        returning 1
      )`
}

/** Frees what the rows `gone` (a CTE of deleted journals' bytes) were charged. */
const freed = (tenantId: string) => sql`freed as (
    update tenant_storage set bytes = greatest(0, bytes - (select coalesce(sum(bytes), 0) from gone)), updated_at = now()
    where tenant_id = ${tenantId} and exists (select 1 from gone)
    returning 1
  )`

async function storedBytes (trx: TenantTrx, tenantId: string): Promise<number> {
  const row = await trx.selectFrom('tenant_storage').select('bytes').where('tenant_id', '=', tenantId).executeTakeFirst()
  return Number(row?.bytes ?? 0)
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

/**
 * Decisions recorded on a waiting run's journal (its row held by readJournal's lock): the counter
 * moves by what the row grew, unbounded, as the run already waits and a decision adds a few
 * bytes per call decided (refusing one for storage would leave the run waiting for nobody).
 */
export async function writeJournal (trx: TenantTrx, tenantId: string, executionId: string, journal: RunJournal): Promise<void> {
  await sql`
    with old as (select bytes from execution_journals where execution_id = ${executionId}),
    changed as (
      update execution_journals set journal = ${jsonOf(journal)}::json, bytes = octet_length(${jsonOf(journal)}::json::text) + octet_length(job::text), updated_at = now()
      where execution_id = ${executionId}
      returning bytes
    ),
    grown as (select (select bytes from changed) - (select bytes from old) as n where exists (select 1 from changed)),
    ${charge(tenantId, Number.MAX_SAFE_INTEGER)}
    select 1`.execute(trx)
}

/** The run ended: its journal goes (its decisions stay, in approval_decisions), and the storage it took. */
export async function deleteJournal (db: AppDatabase, tenantId: string, executionId: string): Promise<void> {
  await withTenant(db, tenantId, async (trx) => {
    await sql`with gone as (delete from execution_journals where execution_id = ${executionId} returning bytes), ${freed(tenantId)} select 1`.execute(trx)
  })
}

/**
 * Journals left behind: a waiting run ends by its expiry at the latest, and its end deletes its
 * journal, so one past `before` (well after its expiry) belongs to no run (its delete failed, or
 * Redis lost the run's record). Answers how many went.
 */
export async function pruneJournals (trx: TenantTrx, tenantId: string, before: Date): Promise<number> {
  const pruned = await sql<{ n: string }>`
    with gone as (delete from execution_journals where expires_at < ${before.toISOString()}::timestamptz returning bytes), ${freed(tenantId)}
    select count(*) as n from gone`.execute(trx)
  return Number(pruned.rows[0]?.n ?? 0)
}

/** The bytes of the tenant's waiting runs' records (part of its storage bytes). */
export async function journalBytesOf (trx: TenantTrx): Promise<number> {
  const row = await trx.selectFrom('execution_journals').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('bytes'), sql<string>`0`).as('bytes')).executeTakeFirst()
  return Number(row?.bytes ?? 0)
}

/** Whether the tenant has a journal left (a tenant with one stays on retention's list). */
export async function hasJournals (trx: TenantTrx): Promise<boolean> {
  return await trx.selectFrom('execution_journals').select('execution_id').limit(1).executeTakeFirst() !== undefined
}
