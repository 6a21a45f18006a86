// A scratch schema on the real PostgreSQL, as the tables' owner (DATABASE_ADMIN_URL), for the
// tests of migrations that must see through forced RLS: one connection, so a tenant set between
// statements holds for the next one; the schema is dropped when the test ends.
import { randomBytes } from 'node:crypto'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'

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
