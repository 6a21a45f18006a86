import { utcDayNumber, utcDayWindow, type LimitStore } from '../store/index.ts'
import { toolCallsKey, userToolCallsKey } from './counter-keys.ts'

// Blocks double from 1 (a run with one call reserves one unit) up to this size, so a run with
// many calls pays one store round trip per block instead of one per call.
const MAX_BLOCK = 64

/**
 * One run's share of its tenant's daily tool calls. Units are taken from the shared counter in
 * blocks (1, 2, 4, ... up to MAX_BLOCK, never more than the run may still call, never past the
 * day's limit: the store takes only what is left), handed out one per call, and the unused ones
 * are given back by `giveBack()` when the run ends. The counter therefore never exceeds the
 * limit across instances; while a run holds unused units, another run may be refused a little
 * early, and the count is exact again once the run has given them back.
 */
export class ToolQuotaReservation {
  private readonly store: LimitStore
  private readonly tenantId: string
  private readonly dailyLimit: number
  private readonly perRunMax: number
  private readonly user: { userId: string, limit: number } | undefined
  private held = 0
  private heldKeys: string[] = []
  private heldDay = -1
  private reserved = 0
  private nextBlock = 1
  private refill: Promise<void> | undefined
  private closed = false
  /** After take() answered false: whose day's calls are used up, the tenant's or the user's. */
  refusedBy: 'tenant' | 'user' = 'tenant'

  constructor (store: LimitStore, tenantId: string, dailyLimit: number, perRunMax: number, user?: { userId: string, limit: number }) {
    this.store = store
    this.tenantId = tenantId
    this.dailyLimit = dailyLimit
    this.perRunMax = perRunMax
    this.user = user
  }

  private counters (dayKey: string): Array<{ key: string, limit: number }> {
    const counters = [{ key: toolCallsKey(this.tenantId, dayKey), limit: this.dailyLimit }]
    if (this.user !== undefined) counters.push({ key: userToolCallsKey(this.tenantId, this.user.userId, dayKey), limit: this.user.limit })
    return counters
  }

  /**
   * One unit for one call: true if taken, false when the day's calls are used up. Throws
   * (StoreUnavailableError) when the store cannot be reached and no unit is held: the caller fails closed.
   */
  async take (): Promise<boolean> {
    for (;;) {
      const now = Date.now()
      // The usual case, a unit held for today, is decided on the day's number alone: the window
      // and its counter key (two ISO dates) are built only when the store is asked.
      const dayNumber = utcDayNumber(now)
      if (this.held > 0 && this.heldDay === dayNumber) {
        this.held--
        return true
      }
      if (this.held > 0) await this.returnHeld() // the day turned
      const day = utcDayWindow(now)
      const counters = this.counters(day.dayKey)
      if (this.closed) return this.answer(await this.store.consumeUpToAll(counters, 1, day.ttlMs))
      // Concurrent calls of one run share one refill instead of each reserving a block.
      if (this.refill === undefined) {
        const want = Math.max(1, Math.min(this.nextBlock, this.perRunMax - this.reserved))
        this.refill = this.store.consumeUpToAll(counters, want, day.ttlMs).then((r) => {
          this.held += r.taken
          this.heldKeys = counters.map((c) => c.key)
          this.heldDay = dayNumber
          this.reserved += r.taken
          this.nextBlock = Math.min(this.nextBlock * 2, MAX_BLOCK)
          if (r.taken === 0) { this.answer(r); throw new QuotaUsedUp() }
        }).finally(() => { this.refill = undefined })
      }
      try {
        await this.refill
      } catch (err) {
        if (err instanceof QuotaUsedUp) return false
        throw err
      }
    }
  }

  /** Whether units were taken; when none, notes whose counter had no room. */
  private answer (r: { taken: number, limitedBy: number }): boolean {
    if (r.taken > 0) return true
    this.refusedBy = r.limitedBy === 1 ? 'user' : 'tenant'
    return false
  }

  /** A unit take() handed out for a call that did not happen after all: kept for the run's next call (or given back). */
  putBack (): void {
    if (!this.closed && this.heldDay === utcDayNumber(Date.now())) this.held++
  }

  /** Gives the units this run reserved and did not use back to the day's counter. Idempotent. */
  async giveBack (): Promise<void> {
    this.closed = true
    await this.refill?.catch(() => {})
    await this.returnHeld()
  }

  private async returnHeld (): Promise<void> {
    const n = this.held
    this.held = 0
    if (n > 0) await Promise.all(this.heldKeys.map(async (key) => { await this.store.refund(key, n) }))
  }
}

class QuotaUsedUp extends Error {}
