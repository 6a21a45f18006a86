import type { Kysely } from 'kysely'
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely/migration'
import { initialMigration } from '../../migrations/001-initial.ts'
import { auditTimeOrderMigration } from '../../migrations/002-audit-time-order.ts'
import { auditPublicIdMigration } from '../../migrations/003-audit-public-id.ts'
import { platformToolsMigration } from '../../migrations/004-platform-tools.ts'
import { executionsMigration } from '../../migrations/005-executions.ts'
import { auditUsageHistoryMigration } from '../../migrations/006-audit-usage-history.ts'
import { tenantDirectoryMigration } from '../../migrations/007-tenant-directory.ts'
import { executionRequestHashMigration } from '../../migrations/008-execution-request-hash.ts'
import { usageRollupsMigration } from '../../migrations/009-usage-rollups.ts'
import { storageUsageMigration } from '../../migrations/010-storage-usage.ts'
import { approvalsMigration } from '../../migrations/011-approvals.ts'
import { tenantSandboxModulesMigration } from '../../migrations/012-tenant-sandbox-modules.ts'
import { approvalJournalsMigration } from '../../migrations/013-approval-journals.ts'
import { journalStorageMigration } from '../../migrations/014-journal-storage.ts'

// Migrations are imported, not read from disk, so they run the same from sources and from dist/.
function migrationProvider (appRole: string): MigrationProvider {
  return {
    async getMigrations (): Promise<Record<string, Migration>> {
      return {
        '001-initial': initialMigration(appRole),
        '002-audit-time-order': auditTimeOrderMigration,
        '003-audit-public-id': auditPublicIdMigration,
        '004-platform-tools': platformToolsMigration(appRole),
        '005-executions': executionsMigration(appRole),
        '006-audit-usage-history': auditUsageHistoryMigration,
        '007-tenant-directory': tenantDirectoryMigration,
        '008-execution-request-hash': executionRequestHashMigration,
        '009-usage-rollups': usageRollupsMigration(appRole),
        '010-storage-usage': storageUsageMigration(appRole),
        '011-approvals': approvalsMigration,
        '012-tenant-sandbox-modules': tenantSandboxModulesMigration,
        '013-approval-journals': approvalJournalsMigration(appRole),
        '014-journal-storage': journalStorageMigration
      }
    }
  }
}

/** Where the migrator keeps its own tables: a schema other than the first on the search path (tests that migrate a scratch schema). */
export interface MigrateOptions { migrationTableSchema?: string }

/** Brings the schema to the latest version; `db` must connect as the owner of the tables. */
export async function migrateToLatest (db: Kysely<any>, appRole: string, options: MigrateOptions = {}): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: migrationProvider(appRole), ...options })
  const resultSet = await migrator.migrateToLatest()
  if (resultSet.error !== undefined) {
    const failed = resultSet.results?.find((result) => result.status === 'Error')
    throw new Error(`Migration ${failed?.migrationName ?? '(unknown)'} failed: ${(resultSet.error as Error).message}`, { cause: resultSet.error })
  }
  return resultSet
}

/** Brings the schema up to `migrationName` and no further: for tests of what a later migration does to existing rows. */
export async function migrateTo (db: Kysely<any>, appRole: string, migrationName: string, options: MigrateOptions = {}): Promise<MigrationResultSet> {
  const resultSet = await new Migrator({ db, provider: migrationProvider(appRole), ...options }).migrateTo(migrationName)
  if (resultSet.error !== undefined) throw new Error(`Migration to ${migrationName} failed: ${(resultSet.error as Error).message}`, { cause: resultSet.error })
  return resultSet
}
