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

// What a check is expected to cost before it ran, from its size: a 500 KB TypeScript check took
// 250 ms of CPU on a quiet machine, twice that under load; plain JavaScript is parsed only.
const TYPESCRIPT_MS_PER_KB = 1
const JAVASCRIPT_MS_PER_KB = 0.25

/**
 * The check time reserved for a check while it is in flight, in whole milliseconds (at most the
 * burst, so that any check fits an unspent budget). Before its body is read only its length is
 * known; it is then estimated as JavaScript, the cheaper kind, so nothing is refused there that
 * would be admitted once the body is read.
 */
export function estimatedCheckMs (bytes: number, language: ScriptLanguage | undefined): number {
  const perKB = language === 'typescript' ? TYPESCRIPT_MS_PER_KB : JAVASCRIPT_MS_PER_KB
  return Math.min(BURST_MS, Math.floor(bytes / 1024 * perKB))
}

/**
 * Checks in flight per tenant on this instance, and what they may cost. A check is admitted only
 * while what its tenant owes, what its checks in flight are expected to cost, and its own
 * expected cost fit the burst: charging a check only when it ended let four large ones in at once
 * (a second of CPU on the machine's cores) before the first was charged. Its expected cost is
 * reserved while it runs; when it ends it is charged what it took instead.
 */
export class CheckSlots {
  private readonly inFlight = new Map<string, { count: number, reservedMs: number }>()
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
   * CHECK_TIME_EXCEEDED while what it owes, what its checks in flight are expected to cost and
   * what this one is expected to cost (`estimateMs`) exceed the burst. Also called before a
   * check's body is read, with an estimate from its length: a flood of refused checks then costs
   * no parsing of what they carry (admit checks again once it has been read).
   */
  refuseOverTime (tenantId: string, limits: CheckLimits, estimateMs = 0): void {
    const inFlight = this.inFlight.get(tenantId) ?? { count: 0, reservedMs: 0 }
    if (inFlight.count >= limits.concurrent) throw new ServiceError('CHECK_LIMIT_EXCEEDED', { limit: limits.concurrent }, { fields: { limit: limits.concurrent } })
    const over = this.owed(tenantId, limits.msPerSecond, this.now()) + inFlight.reservedMs + estimateMs - BURST_MS
    if (over <= 0) return
    const seconds = Math.max(1, Math.ceil(over / limits.msPerSecond))
    throw new ServiceError('CHECK_TIME_EXCEEDED', { limit: limits.msPerSecond }, { fields: { limit: limits.msPerSecond }, retryAfterSeconds: seconds })
  }

  /**
   * Admits one check for the tenant (its release answered), or throws 429 CHECK_LIMIT_EXCEEDED
   * at its limit, or 429 CHECK_TIME_EXCEEDED while it does not fit the tenant's check time (see
   * refuseOverTime); a TypeScript check over its tier's size is refused 413 CHECK_TOO_LARGE first.
   */
  admit (tenantId: string, limits: CheckLimits, request: { code: string, language?: ScriptLanguage }): (cpuMs?: number) => void {
    const bytes = Buffer.byteLength(request.code, 'utf8')
    if (request.language === 'typescript' && bytes > limits.maxTypeScriptBytes) {
      const limit = Math.floor(limits.maxTypeScriptBytes / 1024)
      throw new ServiceError('CHECK_TOO_LARGE', { limit }, { fields: { limit } })
    }
    const estimateMs = estimatedCheckMs(bytes, request.language)
    this.refuseOverTime(tenantId, limits, estimateMs)
    const started = this.now()
    const before = this.inFlight.get(tenantId) ?? { count: 0, reservedMs: 0 }
    this.inFlight.set(tenantId, { count: before.count + 1, reservedMs: before.reservedMs + estimateMs })
    let released = false
    return (cpuMs) => {
      if (released) return
      released = true
      // Charged when it ends: the CPU its parse took where it ran (its wait for a thread is not
      // the tenant's doing), or its time in flight when that is not known; its reservation goes.
      const now = this.now()
      const debt = this.owed(tenantId, limits.msPerSecond, now) + (cpuMs ?? now - started)
      if (this.spent.size >= MAX_DEBTORS) this.spent.delete(this.spent.keys().next().value as string)
      this.spent.set(tenantId, { ms: debt, at: now })
      const left = this.inFlight.get(tenantId) ?? { count: 1, reservedMs: estimateMs }
      if (left.count > 1) this.inFlight.set(tenantId, { count: left.count - 1, reservedMs: Math.max(0, left.reservedMs - estimateMs) })
      else this.inFlight.delete(tenantId)
    }
  }
}
