// A job whose run has no record: Redis lost it (a failover's promoted replica had not received
// it yet, async replication), so nobody could see or end the run, and GET would answer 404 for
// an id the client was given. Unless the run's row says it ended long ago (its record expired,
// and the job came back from the queue after a failover), the record is written again as queued
// and the run ends as a lost one: failed with its code, not run, its execution given back.
import { withTenant } from '../db/with-tenant.ts'
import { sha256 } from './execute-script.ts'
import type { ExecutionJob } from './execution-queue.ts'
import { getExecution } from './execution-repository.ts'
import type { QueuedExecutionsDeps } from './queued-executions-deps.ts'

export const LOST_RECORD_REASON = 'The record of this execution was lost when its Redis node failed over; it was not run'

/** True when the run had no record and was ended here (through `endLost`). */
export async function endIfRecordLost (deps: QueuedExecutionsDeps, job: ExecutionJob, endLost: (job: ExecutionJob, reason: string) => Promise<void>): Promise<boolean> {
  const { executionId, tenantId } = job
  if (await deps.records.get(executionId) !== undefined) return false
  if (await withTenant(deps.db, tenantId, async (trx) => await getExecution(trx, executionId)) !== undefined) return false
  // Only where there is still none: two workers that find it so restore it once, end it once.
  const restored = await deps.records.restore({
    executionId,
    tenantId,
    userId: job.userId,
    status: 'queued',
    submittedAt: job.submittedAt ?? new Date().toISOString(),
    codeSha256: sha256(job.code),
    timeoutMs: job.timeoutMs,
    ...(job.start !== undefined && job.start > 1 ? { starts: job.start } : {})
  })
  if (!restored) return false
  deps.log.warn({ executionId }, 'a queued execution\'s record was lost (a Redis failover?); it ends failed')
  await endLost(job, LOST_RECORD_REASON)
  return true
}
