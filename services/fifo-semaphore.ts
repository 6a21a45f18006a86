/** Rejects a wait that outlived its deadline; the holder never got the slot. */
export class SemaphoreTimeoutError extends Error {
  override name = 'SemaphoreTimeoutError'
}

/**
 * A counting semaphore that serves waiters in arrival order. A released slot is handed straight
 * to the next waiter, so a newcomer can never jump the queue between a release and a wake-up.
 */
export class FifoSemaphore {
  readonly limit: number
  private active = 0
  private readonly waiters: Array<{ grant: () => void }> = []

  constructor (limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer >= 1, got ${String(limit)}`)
    this.limit = limit
  }

  get inUse (): number { return this.active }
  get waiting (): number { return this.waiters.length }
  get idle (): boolean { return this.active === 0 && this.waiters.length === 0 }

  /**
   * A slot now, or undefined when none is free. Never passes a waiter: a slot is free only while
   * nobody waits (a released slot goes straight to the next waiter).
   */
  tryAcquire (): (() => void) | undefined {
    if (this.active >= this.limit) return undefined
    this.active++
    return this.releaser()
  }

  /**
   * Resolves with a release function (calling it twice releases once). With `waitMs`, a wait
   * longer than that rejects with SemaphoreTimeoutError and leaves the queue.
   */
  async acquire (waitMs?: number): Promise<() => void> {
    const now = this.tryAcquire()
    if (now !== undefined) return now
    return await new Promise<() => void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const waiter = {
        grant: () => {
          if (timer !== undefined) clearTimeout(timer)
          resolve(this.releaser())
        }
      }
      this.waiters.push(waiter)
      if (waitMs !== undefined) {
        timer = setTimeout(() => {
          const at = this.waiters.indexOf(waiter)
          if (at !== -1) this.waiters.splice(at, 1)
          reject(new SemaphoreTimeoutError(`waited more than ${waitMs} ms for a free slot`))
        }, Math.max(0, waitMs))
      }
    })
  }

  private releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiters.shift()
      // The slot passes to the next waiter as it is: `active` does not change.
      if (next !== undefined) next.grant()
      else this.active--
    }
  }
}

/** One FifoSemaphore per key, each with the same limit; a key's entry exists only while used. */
export class KeyedSemaphore {
  readonly limit: number
  private readonly byKey = new Map<string, FifoSemaphore>()

  constructor (limit: number) {
    this.limit = limit
  }

  inUse (key: string): number {
    return this.byKey.get(key)?.inUse ?? 0
  }

  /** As FifoSemaphore.acquire, for `key`'s semaphore. */
  async acquire (key: string, waitMs?: number): Promise<() => void> {
    let semaphore = this.byKey.get(key)
    if (semaphore === undefined) {
      semaphore = new FifoSemaphore(this.limit)
      this.byKey.set(key, semaphore)
    }
    const owner = semaphore
    let release
    try {
      release = await semaphore.acquire(waitMs)
    } catch (err) {
      // A wait that timed out may have been the key's last user.
      if (owner.idle && this.byKey.get(key) === owner) this.byKey.delete(key)
      throw err
    }
    return () => {
      release()
      if (owner.idle && this.byKey.get(key) === owner) this.byKey.delete(key)
    }
  }
}

/**
 * How many of something each key holds, taken only below a limit given at each take (it may
 * differ by caller, e.g. by tier) and never waited for. A key's entry exists only while used.
 */
export class KeyedCounter {
  private readonly counts = new Map<string, number>()

  /** One more for `key` and its release (calling it twice releases once), or undefined at `limit`. */
  tryTake (key: string, limit: number): (() => void) | undefined {
    const count = this.counts.get(key) ?? 0
    if (count >= limit) return undefined
    this.counts.set(key, count + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.counts.get(key) ?? 1) - 1
      if (left > 0) this.counts.set(key, left)
      else this.counts.delete(key)
    }
  }
}
