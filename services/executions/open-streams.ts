import type { TenantQuotas } from '../tenants/tiers.ts'
import { KeyedCounter } from '../fifo-semaphore.ts'
import { QUEUE_FACTOR } from './execution-submission.ts'

/**
 * How many event streams a tenant may hold open at once on one instance: two watchers for every
 * run it can have running or queued. A stream of a run that is not over stays open (a socket, a
 * watcher, heartbeats) for as long as the run waits and runs, and opening them is bounded only
 * by the request rate otherwise.
 */
export function eventStreamLimit (quotas: TenantQuotas): number {
  return 2 * (QUEUE_FACTOR + 1) * quotas.maxConcurrentExecutions
}

/** The event streams each tenant holds open on this instance. */
export class OpenStreams {
  private readonly open = new KeyedCounter()

  /** Counts one more stream for the tenant and answers its release (once is enough), or undefined at `limit`. */
  tryOpen (tenantId: string, limit: number): (() => void) | undefined {
    return this.open.tryTake(tenantId, limit)
  }
}
