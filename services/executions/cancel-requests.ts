import type { Redis } from 'ioredis'

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

const CANCEL_KEY = 'tenant-enclave:executions:cancel:'
// A cancel matters while its run can still be running: at most its timeout (≤ 1 h), plus margin.
const CANCEL_TTL_MS = 2 * 60 * 60_000

/** Several instances: a cancel is kept on Redis until its run can no longer be running. */
export function createRedisCancelRequests (redis: Redis): CancelRequests {
  return {
    async record (executionId) { await redis.set(CANCEL_KEY + executionId, '1', 'PX', CANCEL_TTL_MS) },
    async pending (executionIds) {
      const found = await redis.mget(executionIds.map((id) => CANCEL_KEY + id))
      return executionIds.filter((_id, i) => found[i] !== null)
    }
  }
}
