import fp from 'fastify-plugin'
import { sql } from 'kysely'
import { openDatabase } from '../services/db/open-database.ts'
import { assertTenantRoleIsBoundByRls } from '../services/db/rls-self-check.ts'
import type { AppDatabase } from '../services/db/with-tenant.ts'

declare module 'fastify' {
  interface FastifyInstance {
    db: AppDatabase
    /** Resolves when PostgreSQL answers; rejects otherwise (used by /ready). */
    pingDatabase: () => Promise<void>
  }
}

export default fp(async (fastify) => {
  const database = await openDatabase(fastify.config, fastify.log)
  try {
    await assertTenantRoleIsBoundByRls(database)
  } catch (err) {
    await database.close()
    throw err
  }
  if (database.embedded) {
    fastify.log.info({ dir: fastify.config.PGLITE_DIR ?? 'memory' }, 'using embedded PGlite (DATABASE_URL is not set)')
  }
  fastify.decorate('db', { kysely: database.kysely, appRole: database.appRole, tenantConnections: database.tenantConnections, tierConnections: database.tierConnections, tierStatementMs: database.tierStatementMs, switchRole: database.switchRole, simpleQuery: database.simpleQuery })
  fastify.decorate('pingDatabase', async () => { await sql`select 1`.execute(database.kysely) })
  fastify.addHook('onClose', async () => { await database.close() })
}, { name: 'db', dependencies: ['config'] })
