import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { LimitStore } from '../store/index.ts'

// Blocks double from 1 up to this size, and never past a sixteenth of the limit: a steady
// client pays one store round trip per block instead of one per request, and what one instance
// holds unused is a small share of the window.
const MAX_BLOCK = 64
const BLOCK_SHARE_OF_LIMIT = 16
// Windows held at once; past it, requests are counted one by one in the store (nothing is held).
const MAX_HELD_WINDOWS = 10_000
// A full map is swept for ended windows at most this often: a flood of new keys (addresses) must
// not make every request walk the whole map.
const SWEEP_EVERY_MS = 1000

interface HeldWindow {
  /** Units taken from the shared counter and not yet handed out. */
  unused: number
  /** The shared counter's value at the last reservation (every instance's units, used or not). */
  counted: number
  /** When the shared window ends (this instance's clock, from the store's remaining time). */
  resetAt: number
  nextBlock: number
  /** The last reservation found nothing left: the window is full until it ends (units never come back). */
  full: boolean
  refill: Promise<number> | undefined
}

/**
 * A store for @fastify/rate-limit on the LimitStore (Redis) that reserves each key's requests in
 * blocks, as ToolQuotaReservation does for tool calls: one round trip to the shared window per
 * block rather than per request, and none for a request refused in a window already known full.
 * The shared counter never passes the limit (the store takes only what is left), so no instance
 * admits more than the limit in a window. With several instances a client may be refused a
 * little early, by what another instance reserved and has not used; one instance's count is
 * exact. The window starts at its first request and lasts timeWindow, as the plugin's own
 * stores do.
 */
export function reservingRateStore (store: LimitStore, nameSpace: string, options: { now?: () => number } = {}): FastifyRateLimitStoreCtor {
  // The clock is injectable for tests on fake time (with the memory store's own clock).
  const clock = options.now ?? Date.now
  const held = new Map<string, HeldWindow>()
  let sweptAt = Number.NEGATIVE_INFINITY

  const ended = (window: HeldWindow, now: number): boolean => window.resetAt <= now && window.refill === undefined

  function forgetEnded (now: number): void {
    for (const [key, window] of held) if (ended(window, now)) held.delete(key)
  }

  async function reserve (key: string, window: HeldWindow, timeWindow: number, max: number): Promise<number> {
    const block = Math.max(1, Math.min(window.nextBlock, MAX_BLOCK, Math.floor(max / BLOCK_SHARE_OF_LIMIT)))
    const taken = await store.consumeUpTo(nameSpace + key, block, max, timeWindow)
    window.unused += taken.taken
    window.counted = taken.count
    window.resetAt = taken.resetAt
    window.full = taken.taken === 0
    window.nextBlock = Math.min(window.nextBlock * 2, MAX_BLOCK)
    return taken.taken
  }

  async function hit (key: string, timeWindow: number, max: number): Promise<{ current: number, ttl: number }> {
    for (;;) {
      const now = clock()
      let window = held.get(key)
      if (window !== undefined && ended(window, now)) {
        held.delete(key)
        window = undefined
      }
      if (window !== undefined && window.resetAt > now) {
        if (window.unused > 0) {
          window.unused--
          return { current: window.counted - window.unused, ttl: window.resetAt - now }
        }
        if (window.full) return { current: max + 1, ttl: window.resetAt - now }
      }
      if (window === undefined) {
        if (held.size >= MAX_HELD_WINDOWS && now - sweptAt >= SWEEP_EVERY_MS) {
          sweptAt = now
          forgetEnded(now)
        }
        if (held.size >= MAX_HELD_WINDOWS) {
          // Too many keys at once (a flood of addresses): count this one without holding anything.
          const taken = await store.consumeUpTo(nameSpace + key, 1, max, timeWindow)
          return { current: taken.taken === 0 ? max + 1 : taken.count, ttl: Math.max(0, taken.resetAt - now) }
        }
        window = { unused: 0, counted: 0, resetAt: 0, nextBlock: 1, full: false, refill: undefined }
        held.set(key, window)
      }
      // Concurrent requests for one key share one reservation instead of each taking a block.
      const current = window
      current.refill ??= reserve(key, current, timeWindow, max).finally(() => { current.refill = undefined })
      // Nothing left in the window: refused (the plugin refuses when current > max).
      if (await current.refill === 0) return { current: max + 1, ttl: Math.max(0, current.resetAt - clock()) }
    }
  }

  class ReservingRateStore implements FastifyRateLimitStore {
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number, max: number): void {
      hit(key, timeWindow, max).then((result) => { callback(null, result) }, (err: Error) => { callback(err) })
    }

    child (): FastifyRateLimitStore {
      return this
    }
  }
  return ReservingRateStore
}
