// A scratch schema on the real PostgreSQL, as the tables' owner (DATABASE_ADMIN_URL), for the
// tests of migrations that must see through forced RLS: one connection, so a tenant set between
// statements holds for the next one; the schema is dropped when the test ends.
import { randomBytes } from 'node:crypto'
import { Kysely, PostgresDialect, sql } from 'kysely'
import type { Test } from 'tap'
import pg from 'pg'
import { PGliteThread } from '../../services/db/pglite-thread.ts'
import { PGliteDialect } from '../../services/db/pglite-dialect.ts'

export interface OwnerSchema {
  db: Kysely<any>
  schema: string
  asTenant: (tenantId: string) => Promise<void>
}

export async function ownerSchema (t: { teardown: (fn: () => Promise<void>) => void }, adminUrl: string, prefix: string): Promise<OwnerSchema> {
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`
  const setup = new pg.Client({ connectionString: adminUrl })
  await setup.connect()
  await setup.query(`create schema ${schema}`)
  const pool = new pg.Pool({ connectionString: adminUrl, max: 1, options: `-c search_path=${schema}` })
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) })
  t.teardown(async () => {
    await db.destroy()
    await setup.query(`drop schema ${schema} cascade`)
    await setup.end()
  })
  const asTenant = async (tenantId: string): Promise<void> => { await sql`select set_config('app.tenant_id', ${tenantId}, false)`.execute(db) }
  return { db, schema, asTenant }
}

/** A fresh embedded database (PGlite in memory, a superuser session, so RLS hides nothing from it). */
export function embeddedScratch (t: { teardown: (fn: () => Promise<void>) => void }): Kysely<any> {
  const db = new Kysely<any>({ dialect: new PGliteDialect(new PGliteThread('memory://')) })
  t.teardown(async () => { await db.destroy() })
  return db
}

/** Whether each of `tables` in `schema` forces row-level security on its owner too. */
export async function forcedRowSecurity (db: Kysely<any>, schema: string, tables: string[]): Promise<Record<string, boolean>> {
  const rows = await sql<{ relname: string, relforcerowsecurity: boolean }>`
    select c.relname, c.relforcerowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = any(${tables})`.execute(db)
  return Object.fromEntries(rows.rows.map((row) => [row.relname, row.relforcerowsecurity]))
}

type Measure<T> = (db: Kysely<any>, asTenant: (tenantId: string) => Promise<void>, options?: { migrationTableSchema?: string }) => Promise<T>

/**
 * A migration that fills a counter from existing rows, tested both ways it runs: embedded (a
 * superuser session, RLS hides nothing) and, when DATABASE_ADMIN_URL is set, on PostgreSQL as the
 * tables' owner through forced RLS, which must hold again on `tables` afterwards.
 */
export function migrationMeasuredBothWays<T> (t: Test, what: string, prefix: string, tables: string[], measure: Measure<T>, expected: T, ownerAfter?: (t: Test, db: Kysely<any>) => Promise<void>): void {
  t.test(`embedded: ${what}`, async (t) => {
    t.same(await measure(embeddedScratch(t), async () => {}), expected)
  })
  const adminUrl = process.env.DATABASE_ADMIN_URL
  if (adminUrl === undefined || adminUrl === '') return
  t.test(`PostgreSQL as the owner: ${what} through forced RLS, which holds again afterwards`, async (t) => {
    const { db, schema, asTenant } = await ownerSchema(t, adminUrl, prefix)
    t.same(await measure(db, asTenant, { migrationTableSchema: schema }), expected)
    t.same(await forcedRowSecurity(db, schema, tables), Object.fromEntries(tables.map((table) => [table, true])))
    await ownerAfter?.(t, db)
  })
}
