// What POST /api/execute/check may cost one tenant: the check runs nothing and consumes no
// quota, but parsing (and, for TypeScript, stripping) a large script is service CPU. Checks share
// the tenant's request rate (the global rate limit) and are bounded here, by tier: how many run
// at once per tenant on an instance, how large a TypeScript check may be, how long its parse
// may take on a worker thread (ScriptPool) before the thread is stopped, and how much of a core a
// tenant's checks may take over time: four checks in flight, back to back, otherwise kept the
// service's CPU busy (a bystander's trivial run went from 9 to 370 ms at p50).
import { ServiceError } from '../errors/index.ts'
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
  /** Milliseconds of check time per second a tenant's checks may use on one instance, over time. */
  msPerSecond: number
}

// What a tenant may use at once beyond its rate: a few large checks (a person checking as they
// edit never meets the rate). A longer burst would let a flood take the CPU for that long
// whenever it starts again.
const BURST_MS = 1000
// Tenants owing check time remembered at once; past it the oldest entry is forgotten.
const MAX_DEBTORS = 100_000

/**
 * The tier's bounds, from its quotas: free 1 check at once, 25 KB of TypeScript, 1 s, 50 ms of
 * check time a second; enterprise 4, 250 KB, 5 s, 200 ms a second (a fifth of a core).
 */
export function checkLimitsOf (quotas: TenantQuotas): CheckLimits {
  return {
    concurrent: Math.max(1, Math.min(4, Math.ceil(quotas.maxConcurrentExecutions / 2))),
    maxTypeScriptBytes: Math.floor(quotas.maxCodeSizeKB / 2) * 1024,
    timeoutMs: Math.min(5000, Math.max(1000, quotas.maxCodeSizeKB * 10)),
    msPerSecond: Math.min(200, Math.max(50, quotas.maxCodeSizeKB * 0.4))
  }
}

/** A tenant's check time not yet paid off: it drains at the tier's msPerSecond. */
interface Spent { ms: number, at: number }

/** Checks in flight per tenant on this instance. */
export class CheckSlots {
  private readonly inFlight = new Map<string, number>()
  private readonly spent = new Map<string, Spent>()
  private readonly now: () => number

  /** `now` in milliseconds (injectable for tests); performance.now by default. */
  constructor (now: () => number = () => performance.now()) {
    this.now = now
  }

  /** What the tenant still owes now, its entry dropped once paid off (the map holds only debtors). */
  private owed (tenantId: string, msPerSecond: number, now: number): number {
    const entry = this.spent.get(tenantId)
    if (entry === undefined) return 0
    const ms = Math.max(0, entry.ms - (now - entry.at) * msPerSecond / 1000)
    if (ms === 0) this.spent.delete(tenantId)
    else this.spent.set(tenantId, { ms, at: now })
    return ms
  }

  /**
   * Throws 429 CHECK_LIMIT_EXCEEDED while the tenant has its checks in flight, and 429
   * CHECK_TIME_EXCEEDED while its checks have used more than their share of time. Also called
   * before a check's body is read: a flood of refused checks then costs no parsing of what they
   * carry (admit checks again once it has been read).
   */
  refuseOverTime (tenantId: string, limits: CheckLimits): void {
    const inFlight = this.inFlight.get(tenantId) ?? 0
    if (inFlight >= limits.concurrent) throw new ServiceError('CHECK_LIMIT_EXCEEDED', { limit: limits.concurrent }, { fields: { limit: limits.concurrent } })
    const owed = this.owed(tenantId, limits.msPerSecond, this.now())
    if (owed <= BURST_MS) return
    const seconds = Math.max(1, Math.ceil((owed - BURST_MS) / limits.msPerSecond))
    throw new ServiceError('CHECK_TIME_EXCEEDED', { limit: limits.msPerSecond }, { fields: { limit: limits.msPerSecond }, retryAfterSeconds: seconds })
  }

  /**
   * Admits one check for the tenant (its release answered), or throws 429 CHECK_LIMIT_EXCEEDED
   * at its limit, or 429 CHECK_TIME_EXCEEDED while its checks have used more than their share of
   * time (msPerSecond, after a burst of about one large check); a TypeScript check over its
   * tier's size is refused 413 CHECK_TOO_LARGE first.
   */
  admit (tenantId: string, limits: CheckLimits, request: { code: string, language?: ScriptLanguage }): (cpuMs?: number) => void {
    if (request.language === 'typescript' && Buffer.byteLength(request.code, 'utf8') > limits.maxTypeScriptBytes) {
      const limit = Math.floor(limits.maxTypeScriptBytes / 1024)
      throw new ServiceError('CHECK_TOO_LARGE', { limit }, { fields: { limit } })
    }
    const count = this.inFlight.get(tenantId) ?? 0
    if (count >= limits.concurrent) throw new ServiceError('CHECK_LIMIT_EXCEEDED', { limit: limits.concurrent }, { fields: { limit: limits.concurrent } })
    this.refuseOverTime(tenantId, limits)
    const started = this.now()
    this.inFlight.set(tenantId, count + 1)
    let released = false
    return (cpuMs) => {
      if (released) return
      released = true
      // Charged when it ends: the CPU its parse took where it ran (its wait for a thread is not
      // the tenant's doing), or its time in flight when that is not known.
      const now = this.now()
      const debt = this.owed(tenantId, limits.msPerSecond, now) + (cpuMs ?? now - started)
      if (this.spent.size >= MAX_DEBTORS) this.spent.delete(this.spent.keys().next().value as string)
      this.spent.set(tenantId, { ms: debt, at: now })
      const left = (this.inFlight.get(tenantId) ?? 1) - 1
      if (left > 0) this.inFlight.set(tenantId, left)
      else this.inFlight.delete(tenantId)
    }
  }
}
