import { sql, type Kysely } from 'kysely'
import type { Migration } from 'kysely/migration'

/**
 * An idempotency key answers its first execution only for the same request: the SHA-256 of the
 * request (code, language, timeout) is kept with the row, and the same key with another request
 * is refused (422 IDEMPOTENCY_KEY_REUSED). Rows from before this column have none, and match
 * any request, as they did.
 */
export const executionRequestHashMigration: Migration = {
  async up (db: Kysely<any>) {
    await sql`alter table executions add column request_sha256 text`.execute(db)
  },
  async down (db: Kysely<any>) {
    await sql`alter table executions drop column if exists request_sha256`.execute(db)
  }
}
