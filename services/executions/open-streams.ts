import type { TenantQuotas } from '../tenants/tiers.ts'
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
  private readonly open = new Map<string, number>()

  /** Counts one more stream for the tenant and answers its release (once is enough), or undefined at `limit`. */
  tryOpen (tenantId: string, limit: number): (() => void) | undefined {
    const count = this.open.get(tenantId) ?? 0
    if (count >= limit) return undefined
    this.open.set(tenantId, count + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.open.get(tenantId) ?? 1) - 1
      if (left > 0) this.open.set(tenantId, left)
      else this.open.delete(tenantId)
    }
  }
}
