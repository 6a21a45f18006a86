export interface TtlCacheOptions {
  /** Most entries kept; the oldest goes first. Default 10,000. */
  maxEntries?: number
  /** The clock, in ms; tests pass a fake one. Default Date.now. */
  now?: (() => number) | undefined
}

/**
 * A small read-through cache: entries live `ttlMs`, concurrent misses for one key share one
 * load, and `delete` drops an entry at once (and any load already under way for it).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: Promise<V>, expiresAt: number }>()

  private readonly ttlMs: number
  private readonly maxEntries: number
  private readonly now: () => number

  constructor (ttlMs: number, options: TtlCacheOptions = {}) {
    this.ttlMs = ttlMs
    this.maxEntries = options.maxEntries ?? 10_000
    this.now = options.now ?? Date.now
  }

  async get (key: string, load: () => Promise<V>): Promise<V> {
    const now = this.now()
    const hit = this.entries.get(key)
    if (hit !== undefined && hit.expiresAt > now) return await hit.value
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string)
    const value = load()
    const entry = { value, expiresAt: now + this.ttlMs }
    this.entries.set(key, entry)
    // A failed load is not cached: the next caller tries again.
    value.catch(() => { if (this.entries.get(key) === entry) this.entries.delete(key) })
    return await value
  }

  delete (key: string): void {
    this.entries.delete(key)
  }
}
