// What POST /api/execute/check may cost one tenant: the check runs nothing and consumes no
// quota, but parsing (and, for TypeScript, stripping) a large script is service CPU. Checks share
// the tenant's request rate (the global rate limit) and are bounded here, by tier: how many run
// at once per tenant on an instance, how large a TypeScript check may be, and how long its parse
// may take on a worker thread (ScriptPool) before the thread is stopped.
import { ServiceError } from '../errors/index.ts'
import { KeyedCounter } from '../fifo-semaphore.ts'
import type { TenantQuotas } from '../tenants/tiers.ts'
import type { ScriptLanguage } from './strip-types.ts'

export interface CheckLimits {
  /** Checks one tenant may have in flight on one instance (free: 1). */
  concurrent: number
  /** UTF-8 bytes of a TypeScript check (stripping costs more than the parse). */
  maxTypeScriptBytes: number
  /**
   * A check on a worker thread is stopped after this. It counts from the request (a thread's
   * start and the wait for one included), so it bounds a runaway parse, not an ordinary one.
   */
  timeoutMs: number
}

/** The tier's bounds, from its quotas: free 1 check at once, 25 KB of TypeScript, 1 s; enterprise 4, 250 KB, 5 s. */
export function checkLimitsOf (quotas: TenantQuotas): CheckLimits {
  return {
    concurrent: Math.max(1, Math.min(4, Math.ceil(quotas.maxConcurrentExecutions / 2))),
    maxTypeScriptBytes: Math.floor(quotas.maxCodeSizeKB / 2) * 1024,
    timeoutMs: Math.min(5000, Math.max(1000, quotas.maxCodeSizeKB * 10))
  }
}

/** Checks in flight per tenant on this instance. */
export class CheckSlots {
  private readonly inFlight = new KeyedCounter()

  /**
   * Admits one check for the tenant (its release answered), or throws 429 CHECK_LIMIT_EXCEEDED
   * at its limit; a TypeScript check over its tier's size is refused 413 CHECK_TOO_LARGE first.
   */
  admit (tenantId: string, limits: CheckLimits, request: { code: string, language?: ScriptLanguage }): () => void {
    if (request.language === 'typescript' && Buffer.byteLength(request.code, 'utf8') > limits.maxTypeScriptBytes) {
      const limit = Math.floor(limits.maxTypeScriptBytes / 1024)
      throw new ServiceError('CHECK_TOO_LARGE', { limit }, { fields: { limit } })
    }
    const release = this.inFlight.tryTake(tenantId, limits.concurrent)
    if (release === undefined) throw new ServiceError('CHECK_LIMIT_EXCEEDED', { limit: limits.concurrent }, { fields: { limit: limits.concurrent } })
    return release
  }
}
