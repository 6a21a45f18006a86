// What POST /api/execute/check may cost one tenant: the check runs nothing and consumes no
// quota, but parsing (and, for TypeScript, stripping) a large script is service CPU. Checks share
// the tenant's request rate (the global rate limit) and are bounded here, by tier: how many run
// at once per tenant on an instance, how large a TypeScript check may be, how long its parse
// may take on a worker thread (ScriptPool) before the thread is stopped, and how much of a core a
// tenant's checks may take over time: four checks in flight, back to back, otherwise kept the
// service's CPU busy (a bystander's trivial run went from 9 to 370 ms at p50).
import { ServiceError } from '../errors/index.ts'
import type { TenantQuotas, Tier } from '../tenants/tiers.ts'
import type { ScriptLanguage } from './strip-types.ts'

// Every tenant's checks share one worker thread of their own per instance (plugins/code-mode.ts):
// however many tenants flood checks, together they hold at most one core, and the event loop
// (every other request) keeps the other. Only a check smaller than this is parsed on the event
// loop, where it costs a fraction of a millisecond: a 15 KB TypeScript check parsed there held
// the loop about 2 ms, and a flood of them moved a bystander's p99.
export const CHECK_THREADS = 1
export const CHECK_INLINE_BELOW_BYTES = 2 * 1024
// The check thread runs at nice 10: when the service's cores are contended it yields them to the
// event loop and the runners (the process's threads share one scheduling group, so a check
// thread at the same priority took its CPU from them). Measured beside a 15 KB check flood at
// load 17-21: bystander p99 ratio 1.19 and 1.25 at nice 10, 3.53 and 4.39 without. A check then
// takes longer in a busy service; its tenant is charged the thread's CPU, not its wait.
export const CHECK_THREAD_NICE = 10

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
  /** The tenant's tier, and the checks all its tenants together may have in flight on one instance. */
  tier?: { name: Tier, concurrent: number }
}

// What all tenants of a tier together may have in flight on the one check thread of an instance
// (its queue included): a thousand free tenants at one check each would otherwise queue every
// paid tenant's check behind theirs. Enterprise is bounded per tenant only (4 each).
export const TIER_CHECKS_IN_FLIGHT: Record<Tier, number> = { free: 2, starter: 4, enterprise: Number.POSITIVE_INFINITY }

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
export function checkLimitsOf (quotas: TenantQuotas, tier?: Tier): CheckLimits {
  return {
    ...(tier !== undefined ? { tier: { name: tier, concurrent: TIER_CHECKS_IN_FLIGHT[tier] } } : {}),
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

/** A check waiting for one of its tenant's slots: handed one by a check that ends. */
interface Waiter { estimateMs: number, admitted: () => void }
/** A tenant's checks on this instance: in flight (and what they are expected to cost), and waiting. */
interface TenantChecks { count: number, reservedMs: number, waiting: Waiter[] }

const limitExceeded = (limits: CheckLimits): ServiceError => new ServiceError('CHECK_LIMIT_EXCEEDED', { limit: limits.concurrent }, { fields: { limit: limits.concurrent } })
const tierBusy = (tier: { name: Tier, concurrent: number }): ServiceError => new ServiceError('CHECK_TIER_BUSY', { tier: tier.name, limit: tier.concurrent }, { fields: { limit: tier.concurrent }, retryAfterSeconds: 1 })
const timeExceeded = (limits: CheckLimits, overMs: number): ServiceError => new ServiceError('CHECK_TIME_EXCEEDED', { limit: limits.msPerSecond }, { fields: { limit: limits.msPerSecond }, retryAfterSeconds: Math.max(1, Math.ceil(overMs / limits.msPerSecond)) })

/**
 * Checks in flight per tenant on this instance, and what they may cost. A check is admitted only
 * while what its tenant owes, what its checks in flight are expected to cost, and its own
 * expected cost fit the burst: charging a check only when it ended let four large ones in at once
 * (a second of CPU on the machine's cores) before the first was charged. Its expected cost is
 * reserved while it runs; when it ends it is charged what it took instead.
 *
 * Past its tier's checks in flight, a check waits for one of them to end (as many may wait as may
 * run; past that, 429): refused at once, a client retrying at once made a loop of refusals whose
 * HTTP handling took more of the event loop than the checks themselves.
 */
export class CheckSlots {
  private readonly inFlight = new Map<string, TenantChecks>()
  private readonly tierInFlight = new Map<Tier, number>()
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
   * Throws 429 CHECK_LIMIT_EXCEEDED while the tenant has its checks in flight and as many
   * waiting, and 429 CHECK_TIME_EXCEEDED while what it owes, what its checks in flight are
   * expected to cost and what this one is expected to cost (`estimateMs`) exceed the burst. Also
   * called before a check's body is read, with an estimate from its length: a flood of refused
   * checks then costs no parsing of what they carry (admit checks again once it has been read).
   */
  refuseOverTime (tenantId: string, limits: CheckLimits, estimateMs = 0): void {
    const checks = this.inFlight.get(tenantId)
    if (checks !== undefined && checks.count >= limits.concurrent && checks.waiting.length >= limits.concurrent) throw limitExceeded(limits)
    // A check that would wait for one of its tenant's own is not refused for its tier: when it
    // is handed a slot, the tier's count does not change.
    if (limits.tier !== undefined && (checks === undefined || checks.count < limits.concurrent) && (this.tierInFlight.get(limits.tier.name) ?? 0) >= limits.tier.concurrent) throw tierBusy(limits.tier)
    const over = this.owed(tenantId, limits.msPerSecond, this.now()) + (checks?.reservedMs ?? 0) + estimateMs - BURST_MS
    if (over > 0) throw timeExceeded(limits, over)
  }

  /**
   * Admits one check for the tenant (its release answered), waiting for a slot while the tenant
   * has its tier's checks in flight (at most the check's time bound, then 429
   * CHECK_LIMIT_EXCEEDED, as when as many already wait), or throws 429 CHECK_TIME_EXCEEDED while
   * it does not fit the tenant's check time (see refuseOverTime); a TypeScript check over its
   * tier's size is refused 413 CHECK_TOO_LARGE first.
   */
  async admit (tenantId: string, limits: CheckLimits, request: { code: string, language?: ScriptLanguage }): Promise<(cpuMs?: number) => void> {
    const bytes = Buffer.byteLength(request.code, 'utf8')
    if (request.language === 'typescript' && bytes > limits.maxTypeScriptBytes) {
      const limit = Math.floor(limits.maxTypeScriptBytes / 1024)
      throw new ServiceError('CHECK_TOO_LARGE', { limit }, { fields: { limit } })
    }
    const estimateMs = estimatedCheckMs(bytes, request.language)
    this.refuseOverTime(tenantId, limits, estimateMs)
    let checks = this.inFlight.get(tenantId)
    if (checks === undefined) {
      checks = { count: 0, reservedMs: 0, waiting: [] }
      this.inFlight.set(tenantId, checks)
    }
    if (checks.count < limits.concurrent && checks.waiting.length === 0) {
      checks.count++
      checks.reservedMs += estimateMs
      if (limits.tier !== undefined) this.tierInFlight.set(limits.tier.name, (this.tierInFlight.get(limits.tier.name) ?? 0) + 1)
    } else {
      const queue = checks.waiting
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = { estimateMs, admitted: () => { clearTimeout(timer); resolve() } }
        const timer = setTimeout(() => {
          queue.splice(queue.indexOf(waiter), 1)
          reject(limitExceeded(limits))
        }, limits.timeoutMs)
        timer.unref()
        queue.push(waiter)
      })
      // Handed the slot of a check that ended (its own estimate now reserved): it must still fit
      // what its tenant owes by now.
      const over = this.owed(tenantId, limits.msPerSecond, this.now()) + checks.reservedMs - BURST_MS
      if (over > 0) {
        this.leave(tenantId, limits, estimateMs)
        throw timeExceeded(limits, over)
      }
    }
    const started = this.now()
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
      this.leave(tenantId, limits, estimateMs)
    }
  }

  /** A check's slot freed: handed to the tenant's first waiting check, if any. */
  private leave (tenantId: string, limits: CheckLimits, estimateMs: number): void {
    const checks = this.inFlight.get(tenantId)
    if (checks === undefined) return
    checks.reservedMs = Math.max(0, checks.reservedMs - estimateMs)
    const next = checks.waiting.shift()
    if (next !== undefined) {
      checks.reservedMs += next.estimateMs
      next.admitted()
      return
    }
    checks.count--
    if (checks.count <= 0) this.inFlight.delete(tenantId)
    if (limits.tier !== undefined) {
      const left = (this.tierInFlight.get(limits.tier.name) ?? 1) - 1
      if (left > 0) this.tierInFlight.set(limits.tier.name, left)
      else this.tierInFlight.delete(limits.tier.name)
    }
  }
}
