// Migration 014 charges the records of runs already waiting for approval, once, to their
// tenants' storage counters (beside what their documents took) and to each record's `bytes`:
// on embedded PostgreSQL, and (with DATABASE_ADMIN_URL) on the real server as the tables' owner,
// through the forced RLS of both tables, which holds again afterwards.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Kysely, sql } from 'kysely'
import { migrateTo, migrateToLatest } from '../../services/db/migrate.ts'
import { migrationMeasuredBothWays } from '../support/owner-schema.ts'

const APP_ROLE = process.env.DATABASE_APP_ROLE ?? 'enclave_app'

// Records whose text is known: the journal and the job as the service writes them (json keeps the text).
const JOURNAL = '{"version":1,"calls":[],"drawn":[0.5],"logLines":0,"grants":[],"starts":1}'
const JOB = '{"code":"return 1"}'
const RECORD = Buffer.byteLength(JOURNAL) + Buffer.byteLength(JOB)
// Tenant a has two waiting runs and 100 bytes of documents; b one waiting run and no counter yet.
const SEED: Record<string, { records: number, documents?: number }> = { 'jmig-a': { records: 2, documents: 100 }, 'jmig-b': { records: 1 } }

async function chargedAfterMigration (db: Kysely<any>, asTenant: (tenantId: string) => Promise<void>, options: { migrationTableSchema?: string } = {}): Promise<Record<string, { counter: number, records: number[] }>> {
  await migrateTo(db, APP_ROLE, '013-approval-journals', options)
  for (const [tenantId, seed] of Object.entries(SEED)) {
    await asTenant(tenantId)
    if (seed.documents !== undefined) await sql`insert into tenant_storage (tenant_id, bytes, documents) values (${tenantId}, ${seed.documents}, 1)`.execute(db)
    for (let i = 0; i < seed.records; i++) {
      await sql`insert into execution_journals (tenant_id, execution_id, journal, job, expires_at) values (${tenantId}, ${randomUUID()}, ${JOURNAL}::json, ${JOB}::json, now() + interval '1 day')`.execute(db)
    }
  }
  await migrateToLatest(db, APP_ROLE, options)
  const charged: Record<string, { counter: number, records: number[] }> = {}
  for (const tenantId of Object.keys(SEED)) {
    await asTenant(tenantId)
    const counter = (await sql<{ bytes: string }>`select bytes from tenant_storage where tenant_id = ${tenantId}`.execute(db)).rows[0]
    const records = (await sql<{ bytes: string }>`select bytes from execution_journals where tenant_id = ${tenantId}`.execute(db)).rows
    charged[tenantId] = { counter: Number(counter?.bytes ?? -1), records: records.map((r) => Number(r.bytes)) }
  }
  return charged
}

const expected = { 'jmig-a': { counter: 100 + 2 * RECORD, records: [RECORD, RECORD] }, 'jmig-b': { counter: RECORD, records: [RECORD] } }

migrationMeasuredBothWays(t, 'waiting records are charged once, beside the documents', 'journal_migration', ['execution_journals', 'tenant_storage'], chargedAfterMigration, expected)
