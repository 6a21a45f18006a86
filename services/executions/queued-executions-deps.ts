import type { FastifyBaseLogger } from 'fastify'
import type { AppDatabase } from '../db/with-tenant.ts'
import type { LimitStore } from '../store/index.ts'
import type { PerUserQuotas, TenantQuotas, Tier } from '../tenants/tiers.ts'
import type { CancelRequests } from './cancel-requests.ts'
import type { EventLog } from './event-log.ts'
import type { ExecutionDeps } from './execute-script.ts'
import type { ExecutionQueue } from './execution-queue.ts'
import type { ExecutionRecords } from './execution-records.ts'
import type { TenantIndex } from './tenant-index.ts'

/**
 * What queued runs work with: submission, the worker and QueuedExecutions all take it, so it
 * stands apart from each of them (no import cycle between the three).
 */
export interface QueuedExecutionsDeps {
  /** The one execution path's dependencies, hooks included: a queued run takes it too. */
  execution: ExecutionDeps
  db: AppDatabase
  store: LimitStore
  queue: ExecutionQueue
  /** Accepted runs until their row is written: the record of acceptance. */
  records: ExecutionRecords
  events: EventLog
  tenantIndex: TenantIndex
  cancels: CancelRequests
  quotasOf: (tenantId: string) => Promise<TenantQuotas>
  /** The tenant's tier, for the database bounds that are not quotas (TIER_WRITE_LIMITS); absent: the free tier's. */
  tierOf?: (tenantId: string) => Promise<Tier>
  /** The tenant's per-user daily limits, for the user tool calls and CPU of a queued run; absent: none. */
  perUserOf?: (tenantId: string) => Promise<PerUserQuotas>
  log: FastifyBaseLogger
  /** How long a run waits for approval before it ends APPROVAL_EXPIRED (APPROVAL_TTL_SECONDS); default a day. */
  approvalTtlMs?: number
}
