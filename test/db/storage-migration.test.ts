// Migration 010 counts the documents that exist when it runs, once, into each tenant's storage
// counter: on embedded PostgreSQL, and (when DATABASE_ADMIN_URL is set) on the real server as
// the tables' owner, whom the documents table's forced RLS would otherwise show nothing.
import t from 'tap'
import { Kysely, sql } from 'kysely'
import { migrateTo, migrateToLatest } from '../../services/db/migrate.ts'
import { migrationMeasuredBothWays } from '../support/owner-schema.ts'

const APP_ROLE = process.env.DATABASE_APP_ROLE ?? 'enclave_app'

// Bodies whose stored text is known: {"k": "<pad>"} is 9 + pad bytes.
const SEED: Record<string, number[]> = { 'mig-a': [1, 11, 91], 'mig-b': [41], 'mig-empty': [] }
const expected = Object.fromEntries(Object.entries(SEED).filter(([, pads]) => pads.length > 0)
  .map(([tenant, pads]) => [tenant, { bytes: pads.reduce((sum, pad) => sum + 9 + pad, 0), documents: pads.length }]))

/** Seeds the documents of SEED, migrates to the latest, and answers every tenant's counter row. */
async function countAfterMigration (db: Kysely<any>, asTenant: (tenantId: string) => Promise<void>, options: { migrationTableSchema?: string } = {}): Promise<Record<string, { bytes: number, documents: number }>> {
  await migrateTo(db, APP_ROLE, '008-execution-request-hash', options)
  for (const [tenantId, pads] of Object.entries(SEED)) {
    await asTenant(tenantId)
    for (const pad of pads) {
      await sql`insert into documents (tenant_id, collection, body, created_by) values (${tenantId}, 'data', ${JSON.stringify({ k: 'x'.repeat(pad) })}::jsonb, 'seed')`.execute(db)
    }
  }
  await migrateToLatest(db, APP_ROLE, options)
  const rows: Record<string, { bytes: number, documents: number }> = {}
  for (const tenantId of Object.keys(SEED)) {
    await asTenant(tenantId)
    const row = (await sql<{ bytes: string, documents: string }>`select bytes, documents from tenant_storage where tenant_id = ${tenantId}`.execute(db)).rows[0]
    if (row !== undefined) rows[tenantId] = { bytes: Number(row.bytes), documents: Number(row.documents) }
  }
  return rows
}

migrationMeasuredBothWays(t, 'existing documents are counted per tenant', 'storage_migration', ['documents', 'tenant_storage'], countAfterMigration, expected, async (t, db) => {
  await sql`select set_config('app.tenant_id', '', false)`.execute(db)
  t.same((await sql`select * from tenant_storage`.execute(db)).rows, [], 'without a tenant the owner sees no counter')
})
