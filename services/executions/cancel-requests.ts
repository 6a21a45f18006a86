import { cancelledError } from '../enclave/index.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import type { LimitStore } from '../store/index.ts'
import type { RedisClient } from '../store/redis-connection.ts'
import { cancelKey, endKey } from './execution-keys.ts'

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

// A cancel matters while its run can still be running: at most its timeout (≤ 1 h), plus margin.
const CANCEL_TTL_MS = 2 * 60 * 60_000

/** Several instances: a cancel is kept on Redis until its run can no longer be running. */
export function createRedisCancelRequests (redis: RedisClient): CancelRequests {
  return {
    async record (executionId) { await redis.set(cancelKey(executionId), '1', 'PX', CANCEL_TTL_MS) },
    async pending (executionIds) {
      // One GET each, not an MGET: on a cluster the runs' keys are in different slots. They are
      // this instance's running runs, a handful, checked only after a reconnect.
      const found = await Promise.all(executionIds.map(async (id) => await redis.get(cancelKey(id))))
      return executionIds.filter((_id, i) => found[i] !== null)
    }
  }
}

/**
 * A running run's end is decided once, across instances: a cancel and the run's own finish (or
 * the lost-run check) each claim it with one atomic take of a one-unit counter, and the first
 * claim decides. A cancel answers 202 only when its claim won; a run whose claim lost ends
 * cancelled, whatever it computed. The counter outlives any run (CANCEL_TTL_MS).
 */
export async function claimEnd (store: LimitStore, executionId: string, start?: number): Promise<boolean> {
  return (await store.consume(endKey(executionId, start), 1, 1, CANCEL_TTL_MS)).allowed
}

/** The result of a run whose end a cancel claimed: its logs and stats kept, its outcome CANCELLED. */
export function cancelledResult (executionId: string, ran?: ExecutionResult): ExecutionResult {
  return { executionId, success: false, error: cancelledError(), logs: ran?.logs ?? [], stats: ran?.stats ?? { duration: 0, toolCallCount: 0 } }
}
