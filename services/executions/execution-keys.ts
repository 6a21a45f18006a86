// Every Redis key of one execution, in one place. They share the execution's hash tag, so on a
// Redis Cluster they live in one slot and the event log's script (which takes four of them)
// runs on one node. An execution's keys are tagged by its id rather than its tenant's: every
// reader has the id in hand, and one busy tenant's event streams spread over the cluster. The
// keys that list a tenant's runs carry the tenant's tag instead.
import { tenantTag } from '../quotas/counter-keys.ts'

/** The hash tag of every key of one execution. */
export const executionTag = (executionId: string): string => `{${executionId}}`

/** The event log's keys: the stream, its sequence counter, the owner, the recent append ids. */
export function eventKeys (executionId: string): { stream: string, counter: string, owner: string, appends: string } {
  const stream = `tenant-enclave:events:${executionTag(executionId)}`
  return { stream, counter: `${stream}:seq`, owner: `${stream}:owner`, appends: `${stream}:appends` }
}

/** A cancel recorded for a running run, for the instance that missed its notice. */
export const cancelKey = (executionId: string): string => `tenant-enclave:executions:cancel:${executionTag(executionId)}`

/**
 * The one-unit counter a start's end is claimed with: the run's, or for a later start of a run
 * resumed after approval, that start's (an earlier start that suspended may have claimed its own).
 */
export const endKey = (executionId: string, start = 1): string => `executions:end:${executionTag(executionId)}${start > 1 ? `:${start}` : ''}`

/** A queued run's record, from its acceptance until a while after its row is written. */
export const recordKey = (executionId: string): string => `tenant-enclave:executions:record:${executionTag(executionId)}`

/** A tenant's runs whose row is not written yet (their records), by submission time. */
export const unstoredKey = (tenantId: string): string => `tenant-enclave:executions:unstored:${tenantTag(tenantId)}`

/** The run an idempotency key of the tenant names, for the key's 24 hours. */
export const idempotencyKey = (tenantId: string, key: string): string => `tenant-enclave:executions:idempotency:${tenantTag(tenantId)}:${key}`

/** When each unstored run is due to be stored: one global sorted set, touched by single-key commands only. */
export const DUE_KEY = 'tenant-enclave:executions:due'
