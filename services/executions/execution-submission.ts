// A queued run's submission: the code-size rule, idempotency, the tenant's queue bound and the
// daily quota, then the row, the `queued` event and the job, or none of them.
import { withTenant } from '../db/with-tenant.ts'
import type { ExecutionStatus } from '../db/schema.ts'
import { admitSubmission, type QueueFullRefusal, type Refusal, type SubmissionAdmission } from '../quotas/admission.ts'
import { queuedKey } from '../quotas/counter-keys.ts'
import type { PerUserQuotas, TenantQuotas } from '../tenants/tiers.ts'
import { sha256 } from './execute-script.ts'
import { codeSizeRefusalOf, newExecutionId, requestSha256, runTimeoutMs, type ExecutionRequestBody } from './execution-request.ts'
import type { ExecutionJob } from './execution-queue.ts'
import { deleteExecution, insertExecution } from './execution-repository.ts'
import type { QueuedExecutionsDeps } from './queued-executions-deps.ts'

/** Queued runs a tenant may have, per concurrent run its tier allows. */
export const QUEUE_FACTOR = 10
/** A queued run's place in its tenant's queue bound expires after this, should its instance die. */
const QUEUED_LEASE_MS = 60 * 60_000

// The lease set that bounds a tenant's queued runs; a run leaves it once it is marked running.
// It sits in the tenant's slot with the daily counter it is admitted with.
export { queuedKey }

export type SubmitRefusal = Refusal | QueueFullRefusal

export interface Submitter {
  tenantId: string
  userId: string
  permissions: string[]
  quotas: TenantQuotas
  perUser?: PerUserQuotas
}

export type Submission =
  | { accepted: true, executionId: string, status: ExecutionStatus, created: boolean }
  | { accepted: false, refusal: SubmitRefusal }
  | { accepted: false, reused: true }

export async function submitExecution (deps: QueuedExecutionsDeps, caller: Submitter, body: ExecutionRequestBody, idempotencyKey: string | undefined): Promise<Submission> {
  const { quotas, tenantId } = caller
  const codeSha256 = sha256(body.code)
  const executionId = newExecutionId()
  const refuse = (refusal: SubmitRefusal): Submission => {
    deps.execution.hooks.refused({ tenantId, executionId, userId: caller.userId, codeSha256 }, refusal)
    return { accepted: false, refusal }
  }
  const tooLarge = codeSizeRefusalOf(body.code, quotas)
  if (tooLarge !== undefined) return refuse(tooLarge)
  const timeoutMs = runTimeoutMs(body.timeoutMs, quotas)

  const row = { tenantId, executionId, userId: caller.userId, timeoutMs, codeSha256, idempotencyKey, ...(idempotencyKey !== undefined ? { requestSha256: requestSha256(body) } : {}) }
  const queue = { key: queuedKey(tenantId), bound: QUEUE_FACTOR * quotas.maxConcurrentExecutions, leaseMs: QUEUED_LEASE_MS }
  const undo = async (): Promise<void> => { await withTenant(deps.db, tenantId, async (trx) => { await deleteExecution(trx, executionId) }) }
  let admission: SubmissionAdmission
  if (idempotencyKey === undefined) {
    // No key, so no earlier submission to find: the row and the admission go side by side (one
    // round trip less), and whichever fails undoes the other.
    const [inserted, admitted] = await Promise.allSettled([insertExecution(deps.db, row), admitSubmission(deps.store, caller, executionId, queue)])
    if (inserted.status === 'rejected') {
      if (admitted.status === 'fulfilled' && admitted.value.admitted) await admitted.value.withdraw().catch(() => {})
      throw inserted.reason
    }
    if (admitted.status === 'rejected') {
      await undo().catch(() => {})
      throw admitted.reason
    }
    admission = admitted.value
  } else {
    // A key: the row first, so a repeat finds the first execution and takes no quota.
    const inserted = await insertExecution(deps.db, row)
    if (!inserted.created) {
      // The key's first request stands for it: another body under the same key is a client bug
      // (a reused key), never silently answered with the first run.
      const first = inserted.row.request_sha256
      if (first !== null && first !== row.requestSha256) return { accepted: false, reused: true }
      return { accepted: true, executionId: inserted.row.execution_id, status: inserted.row.status, created: false }
    }
    try {
      admission = await admitSubmission(deps.store, caller, executionId, queue)
    } catch (err) {
      await undo().catch(() => {})
      throw err
    }
  }
  if (!admission.admitted) {
    await undo()
    return refuse(admission.refusal)
  }
  // `queued` and the job go together: the event log makes `queued` seq 1 whichever lands first.
  // A job the queue did not take was never accepted: the row and the quota go back (the client
  // gets 503), and the stream's lone `queued` expires unread.
  const job: ExecutionJob = { executionId, tenantId, userId: caller.userId, permissions: caller.permissions, code: body.code, timeoutMs, ...(body.language !== undefined ? { language: body.language } : {}) }
  const [, , added] = await Promise.allSettled([
    deps.events.append(executionId, 'queued', {}, tenantId),
    deps.tenantIndex.add(tenantId),
    deps.queue.add(job)
  ])
  if (added.status === 'rejected') {
    await Promise.all([undo(), admission.withdraw()]).catch(() => {})
    throw added.reason
  }
  return { accepted: true, executionId, status: 'queued', created: true }
}
