// How many of a tenant's runs may wait for approval at once (its tier's maxWaitingRuns). A
// waiting run holds no slot and no place in the queue bound, so without this a tenant could park
// every one of its daily runs, each with a journal, for as long as approvals wait. Each waiting
// run holds a lease on the tenant's waiting key (the store's semaphore: one atomic Lua step on
// Redis, the tenant's hash tag, so two runs suspending at once on two instances cannot both
// take the last place). The lease's holder is the run, so a run that waits again after it
// resumed counts once; the place is given back when the run resumes, is cancelled or expires,
// and the lease lives no longer than the run's record, so a run whose record is gone frees it too.
import { enclaveError, type ExecutionError } from '../../enclave/index.ts'
import { formatMessage } from '../../errors/registry.ts'
import { waitingKey } from '../../quotas/counter-keys.ts'
import type { QueuedExecutionsDeps } from '../queued-executions-deps.ts'

type PlaceDeps = Pick<QueuedExecutionsDeps, 'store' | 'log'>

/**
 * Takes the run's place among its tenant's waiting runs, for `leaseMs` at most (the waiting
 * record's lifetime). Answers the run's error when the tenant has no place left (nothing taken).
 */
export async function takeWaitingPlace (deps: PlaceDeps, tenantId: string, executionId: string, limit: number, leaseMs: number): Promise<ExecutionError | undefined> {
  const key = waitingKey(tenantId)
  if (await deps.store.acquireLease(key, executionId, limit, leaseMs)) return undefined
  const waiting = await deps.store.countLeases(key).catch(() => limit)
  return enclaveError('APPROVAL_WAIT_LIMIT', formatMessage('APPROVAL_WAIT_LIMIT', { waiting, limit }))
}

/**
 * Takes the place back whatever the limit says: for a run that waits again because its resume
 * could not be queued (it waited before; it must stay counted).
 */
export async function keepWaitingPlace (deps: PlaceDeps, tenantId: string, executionId: string, leaseMs: number): Promise<void> {
  await deps.store.acquireLease(waitingKey(tenantId), executionId, Number.MAX_SAFE_INTEGER, leaseMs)
}

/** Gives the run's place back; never throws (a place not given back frees itself with its lease). */
export async function giveWaitingPlaceBack (deps: PlaceDeps, tenantId: string, executionId: string): Promise<void> {
  await deps.store.releaseLease(waitingKey(tenantId), executionId).catch((err: unknown) => {
    deps.log.warn({ err, executionId }, 'could not give back a waiting run\'s place; it frees itself when its lease ends')
  })
}

/** How many of the tenant's runs wait now. */
export async function waitingRuns (deps: Pick<QueuedExecutionsDeps, 'store'>, tenantId: string): Promise<number> {
  return await deps.store.countLeases(waitingKey(tenantId))
}
