// A queued run's submission: the code-size rule, idempotency, the tenant's queue bound and the
// daily quota, then the record, the `queued` event and the job, or none of them.
import { admitSubmission, type QueueFullRefusal, type Refusal, type SubmissionAdmission } from '../quotas/admission.ts'
import { queuedKey } from '../quotas/counter-keys.ts'
import type { PerUserQuotas, TenantQuotas } from '../tenants/tiers.ts'
import { sha256 } from './execute-script.ts'
import { codeSizeRefusalOf, newExecutionId, requestSha256, runTimeoutMs, type ExecutionRequestBody } from './execution-request.ts'
import type { ExecutionJob } from './execution-queue.ts'
import type { RunRecord } from './execution-records.ts'
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
  | { accepted: true, executionId: string, created: true }
  /** The idempotency key's first run: its status is read where it is (record or row). */
  | { accepted: true, executionId: string, created: false }
  | { accepted: false, refusal: SubmitRefusal }
  | { accepted: false, reused: true }

/**
 * The record (Redis, or memory in embedded mode) is what accepts a run: no PostgreSQL on this
 * path, so a submission is answered while PostgreSQL is away, and the row is the worker's.
 */
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

  const keyed = idempotencyKey !== undefined ? { idempotencyKey, requestSha256: requestSha256(body) } : {}
  const record: RunRecord = { executionId, tenantId, userId: caller.userId, status: 'queued', submittedAt: new Date().toISOString(), codeSha256, timeoutMs, ...keyed }
  const queue = { key: queuedKey(tenantId), bound: QUEUE_FACTOR * quotas.maxConcurrentExecutions, leaseMs: QUEUED_LEASE_MS }
  const undo = async (): Promise<void> => { await deps.records.forget(record) }
  let admission: SubmissionAdmission
  if (idempotencyKey === undefined) {
    // No key, so no earlier submission to find: the record and the admission go side by side
    // (one round trip less), and whichever fails undoes the other.
    const [accepted, admitted] = await Promise.allSettled([deps.records.accept(record), admitSubmission(deps.store, caller, executionId, queue)])
    if (accepted.status === 'rejected') {
      if (admitted.status === 'fulfilled' && admitted.value.admitted) await admitted.value.withdraw().catch(() => {})
      throw accepted.reason
    }
    if (admitted.status === 'rejected') {
      await undo().catch(() => {})
      throw admitted.reason
    }
    admission = admitted.value
  } else {
    // A key: the record first, so a repeat finds the first execution and takes no quota.
    const accepted = await deps.records.accept(record)
    if (!accepted.created) {
      // The key's first request stands for it: another body under the same key is a client bug
      // (a reused key), never silently answered with the first run.
      if (accepted.requestSha256 !== undefined && accepted.requestSha256 !== record.requestSha256) return { accepted: false, reused: true }
      return { accepted: true, executionId: accepted.executionId, created: false }
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
  // A job the queue did not take was never accepted: the record and the quota go back (the
  // client gets 503), and the stream's lone `queued` expires unread.
  const job: ExecutionJob = { executionId, tenantId, userId: caller.userId, permissions: caller.permissions, code: body.code, timeoutMs, submittedAt: record.submittedAt, ...(body.language !== undefined ? { language: body.language } : {}) }
  const [, added] = await Promise.allSettled([
    deps.events.append(executionId, 'queued', {}, tenantId),
    deps.queue.add(job)
  ])
  if (added.status === 'rejected') {
    await Promise.all([undo(), admission.withdraw()]).catch(() => {})
    throw added.reason
  }
  return { accepted: true, executionId, created: true }
}
