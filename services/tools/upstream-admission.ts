import { FifoSemaphore, SemaphoreTimeoutError } from '../fifo-semaphore.ts'
import type { Tier } from '../tenants/tiers.ts'
import { HttpToolError } from './http-tool-error.ts'

/** How the calls in flight to one upstream origin are shared (docs/operations.md, SECURITY.md). */
export interface UpstreamCaps {
  /** TOOL_UPSTREAM_CONNECTIONS: connections per origin, and so the calls in flight to it. */
  connectionsPerOrigin: number
  /** TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT: one tenant's calls in flight to one origin. */
  tenantMaxInFlight: number
  /** The share (%) of an origin's connections all tenants of a tier hold together. */
  tierSharePercent: Record<Tier, number>
}

export const DEFAULT_TIER_SHARE_PERCENT: Record<Tier, number> = { free: 25, starter: 50, enterprise: 100 }

interface Level { key: string, limit: number, busy: (waitedMs: number) => string }

/**
 * Admission to an upstream origin, in three FIFO levels taken in a fixed order (so no cycle, no
 * deadlock): the tenant's own slots, its tier's share, and the origin's connections. A call
 * holds one slot of each while in flight, so a tenant flooding a slow endpoint can fill its own
 * slots and its tier's share, never the pool: a bystander of another tier, or of the same tier
 * within its share, finds a connection free and is not queued behind the slow calls. Undici's
 * own queue is never used: at most `connectionsPerOrigin` calls are admitted to an origin.
 *
 * The counts are this process's (the connection pool is too): N instances hold N pools.
 */
export class UpstreamAdmission {
  readonly caps: UpstreamCaps
  private readonly slots = new Map<string, FifoSemaphore>()

  constructor (caps: UpstreamCaps) {
    if (!Number.isSafeInteger(caps.connectionsPerOrigin) || caps.connectionsPerOrigin < 1) throw new RangeError('connectionsPerOrigin must be an integer >= 1')
    this.caps = caps
  }

  /** A tier's slots at one origin: its share of the connections, at least one. */
  tierLimit (tier: Tier): number {
    return Math.max(1, Math.floor(this.caps.connectionsPerOrigin * this.caps.tierSharePercent[tier] / 100))
  }

  /** Keys with a call holding or waiting for a slot: idle keys are dropped, so this stays small. */
  get trackedKeys (): number {
    return this.slots.size
  }

  /** Calls in flight under a key (tests and metrics): `origin`, `origin tier:free`, `origin tenant:t1`. */
  inFlight (key: string): number {
    return this.slots.get(key)?.inUse ?? 0
  }

  /**
   * The slots of every level at once, when each has one free (the usual case), with no promise,
   * timer or listener on the call's path; undefined when a level is full, and then the call
   * waits its turn in `admit`. It never passes a waiter: a level with one has no slot free.
   */
  tryAdmit (origin: string, tenantId: string, tier: Tier): (() => void) | undefined {
    const tenant = this.tryTake(`${origin} tenant:${tenantId}`, this.caps.tenantMaxInFlight)
    if (tenant === undefined) return undefined
    const tierSlot = this.tryTake(`${origin} tier:${tier}`, this.tierLimit(tier))
    if (tierSlot === undefined) { tenant(); return undefined }
    const connection = this.tryTake(origin, this.caps.connectionsPerOrigin)
    if (connection === undefined) { tierSlot(); tenant(); return undefined }
    let released = false
    return () => {
      if (released) return
      released = true
      connection()
      tierSlot()
      tenant()
    }
  }

  /**
   * Resolves with a release function once the call holds a slot at every level. `signal` is the
   * call's deadline (its timeoutMs, counted from the call's start, or the end of the run): a wait
   * it cuts short rejects with an HttpToolError that names the limit that was full.
   */
  async admit (origin: string, tenantId: string, tier: Tier, signal: AbortSignal, timeoutMs: number): Promise<() => void> {
    const { tenantMaxInFlight, connectionsPerOrigin } = this.caps
    const levels: Level[] = [
      {
        key: `${origin} tenant:${tenantId}`,
        limit: tenantMaxInFlight,
        busy: (ms) => `this tenant already has ${tenantMaxInFlight} calls in flight to ${origin} (TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT) and none ended within this call's ${ms} ms timeout; make fewer calls to it at once`
      },
      {
        key: `${origin} tier:${tier}`,
        limit: this.tierLimit(tier),
        busy: (ms) => `the ${tier} tier's tenants together have ${this.tierLimit(tier)} calls in flight to ${origin} (their share of TOOL_UPSTREAM_CONNECTIONS) and none ended within this call's ${ms} ms timeout; retry later`
      },
      {
        key: origin,
        limit: connectionsPerOrigin,
        busy: (ms) => `all ${connectionsPerOrigin} connections to ${origin} are in use (TOOL_UPSTREAM_CONNECTIONS) and none came free within this call's ${ms} ms timeout; retry later`
      }
    ]
    const held: Array<() => void> = []
    const releaseAll = (): void => { for (const release of held.splice(0).reverse()) release() }
    try {
      for (const level of levels) held.push(await this.take(level, signal, timeoutMs))
    } catch (err) {
      releaseAll()
      throw err
    }
    return releaseAll
  }

  private semaphore (key: string, limit: number): FifoSemaphore {
    let semaphore = this.slots.get(key)
    if (semaphore === undefined) {
      semaphore = new FifoSemaphore(limit)
      this.slots.set(key, semaphore)
    }
    return semaphore
  }

  /** An entry lives only while a call holds or waits for one of its slots. */
  private forget (key: string, owner: FifoSemaphore): void {
    if (owner.idle && this.slots.get(key) === owner) this.slots.delete(key)
  }

  private tryTake (key: string, limit: number): (() => void) | undefined {
    const owner = this.semaphore(key, limit)
    const release = owner.tryAcquire()
    if (release === undefined) return undefined
    return () => { release(); this.forget(key, owner) }
  }

  private async take (level: Level, signal: AbortSignal, timeoutMs: number): Promise<() => void> {
    const owner = this.semaphore(level.key, level.limit)
    const forget = (): void => { this.forget(level.key, owner) }
    const wrap = (release: () => void) => () => { release(); forget() }
    if (signal.aborted) throw this.cutShort(level, signal, timeoutMs)
    // Bounded by the whole timeout too, so a place kept for a call that gave up (below) leaves
    // the queue by then even if no slot comes free.
    const pending = owner.acquire(timeoutMs)
    return await new Promise((resolve, reject) => {
      const onAbort = (): void => {
        // The place in the queue is kept until it comes up, then handed straight on: the FIFO
        // order of the others is untouched.
        pending.then((release) => { wrap(release)() }, forget)
        reject(this.cutShort(level, signal, timeoutMs))
      }
      signal.addEventListener('abort', onAbort, { once: true })
      pending.then((release) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) return
        resolve(wrap(release))
      }, (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        forget()
        reject(err instanceof SemaphoreTimeoutError ? new HttpToolError(level.busy(timeoutMs)) : err)
      })
    })
  }

  private cutShort (level: Level, signal: AbortSignal, timeoutMs: number): Error {
    const reason: unknown = signal.reason
    // The run's end keeps its own message; a deadline says which limit it waited on.
    if (reason instanceof HttpToolError && reason.message.startsWith('timed out')) return new HttpToolError(level.busy(timeoutMs))
    return reason instanceof Error ? reason : new HttpToolError('the call was cancelled')
  }
}
