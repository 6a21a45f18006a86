/** Where a cancel is announced to every instance (pub/sub); the record below backs it up. */
export const CANCEL_CHANNEL = 'tenant-enclave:executions:cancel'

/**
 * Cancels asked for running runs, kept where every instance can read them. The pub/sub notice
 * is the fast path; a notice lost while the running instance's subscription was reconnecting is
 * found here once it is back (QueuedExecutions re-checks its runs then).
 */
export interface CancelRequests {
  record (executionId: string): Promise<void>
  /** Those of `executionIds` that have a recorded cancel. */
  pending (executionIds: string[]): Promise<string[]>
}

/** One process: a cancel always reaches its run directly, so nothing needs recording. */
export function createMemoryCancelRequests (): CancelRequests {
  return {
    async record () {},
    async pending () { return [] }
  }
}
