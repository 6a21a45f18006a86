/**
 * A small read-through cache: entries live `ttlMs`, concurrent misses for one key share one
 * load, and `delete` drops an entry at once (and any load already under way for it).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: Promise<V>, expiresAt: number }>()

  private readonly ttlMs: number
  private readonly maxEntries: number

  constructor (ttlMs: number, maxEntries = 10_000) {
    this.ttlMs = ttlMs
    this.maxEntries = maxEntries
  }

  async get (key: string, load: () => Promise<V>): Promise<V> {
    const now = Date.now()
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

  clear (): void {
    this.entries.clear()
  }
}
