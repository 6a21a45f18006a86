// Runs the migrations as the owner (DATABASE_ADMIN_URL, else DATABASE_URL) and exits.
import pino from 'pino'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { loadConfig } from '../plugins/config.ts'
import { migrateToLatest } from '../services/db/migrate.ts'

const log = pino()
const config = loadConfig({ JWT_SECRET: 'not-used-by-migrations-'.padEnd(32, '-'), ...process.env })
const url = config.DATABASE_ADMIN_URL ?? config.DATABASE_URL
if (url === undefined) {
  log.info('DATABASE_URL is not set: the embedded database migrates itself at start; nothing to do')
  process.exit(0)
}
const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) })
try {
  const { results } = await migrateToLatest(db, config.DATABASE_APP_ROLE)
  for (const result of results ?? []) log.info({ migration: result.migrationName, status: result.status }, 'migration')
  log.info('schema is up to date')
} finally {
  await db.destroy()
}
