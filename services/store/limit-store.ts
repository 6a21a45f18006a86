/** Result of a counter consume; `resetAt` is epoch ms when the counter's key expires. */
export interface ConsumeResult {
  allowed: boolean
  count: number
  resetAt: number
}

/** The lease an admission takes (as acquireLease). */
export interface AdmitLease { key: string, holderId: string, limit: number, leaseMs: number }

/**
 * A counter an admission checks: it refuses when count + max(take, 1) > limit, and adds `take`
 * when everything admits. `take: 0` only checks that some of the limit is left (a budget that
 * is charged later, such as CPU time).
 */
export interface AdmitCounter { key: string, take: number, limit: number }

/**
 * Result of an admission: which check refused, or all taken. `count`/`resetAt` are those of the
 * counter that refused (its index is `refused`), or of the first counter when admitted.
 */
export interface AdmitResult {
  outcome: 'admitted' | 'lease-refused' | 'counter-refused'
  count: number
  resetAt: number
  /** The index in `counters` of the counter that refused (counter-refused only). */
  refused?: number
}

/** Result of consumeUpToAll: units taken from every counter, and which counter held it back. */
export interface TakeAllResult {
  taken: number
  /** The index of the counter with the least room when that was less than asked; -1 when none. */
  limitedBy: number
  /** When the limiting counter (or the first) expires, epoch ms. */
  resetAt: number
}

/** Result of consumeUpTo: how many units were taken (0 when none were left). */
export interface TakeResult {
  taken: number
  count: number
  resetAt: number
}

/**
 * Everything counted across instances: quota counters, the concurrency semaphore and pub/sub.
 * Backed by Redis when REDIS_URL is set, else by one process's memory (same semantics, one instance).
 */
export interface LimitStore {
  readonly kind: 'redis' | 'memory'
  /** Atomic: adds `amount` only if count + amount <= limit; a refused consume changes nothing. */
  consume (key: string, amount: number, limit: number, ttlMs: number): Promise<ConsumeResult>
  /**
   * Atomic: takes min(amount, limit - count) units (0 if none are left, which changes nothing),
   * so a caller can reserve a block of units without ever going past the limit.
   */
  consumeUpTo (key: string, amount: number, limit: number, ttlMs: number): Promise<TakeResult>
  /**
   * As consumeUpTo over several counters at once: takes the same min(amount, least room left)
   * from each of them, or nothing when one has no room.
   */
  consumeUpToAll (counters: Array<{ key: string, limit: number }>, amount: number, ttlMs: number): Promise<TakeAllResult>
  /**
   * Atomic admission in one step: a lease (as acquireLease) and every counter's `take` (new
   * counters expire after ttlMs). Either all are taken or none; the lease is checked first,
   * then the counters in order, and the first that has no room is the refusal.
   */
  admit (lease: AdmitLease, counters: AdmitCounter[], ttlMs: number): Promise<AdmitResult>
  /** Current count (0 if absent or expired). */
  get (key: string): Promise<number>
  /** Undoes a consume (never below 0, never revives an expired key). */
  refund (key: string, amount: number): Promise<void>
  /** Cluster-wide semaphore with expiring leases: a crashed holder's slot frees itself after leaseMs. */
  acquireLease (key: string, holderId: string, limit: number, leaseMs: number): Promise<boolean>
  releaseLease (key: string, holderId: string): Promise<void>
  /** Live (unexpired) leases. */
  countLeases (key: string): Promise<number>
  publish (channel: string, message: string): Promise<void>
  /**
   * `onResubscribed` is called each time the subscription holds again after the connection to
   * the backend was lost and came back: what was published meanwhile never arrived, so a
   * subscriber that cannot afford to miss a message re-checks the state it stands for.
   */
  subscribe (channel: string, onMessage: (message: string) => void, onResubscribed?: () => void): Promise<void>
  /** Throws StoreUnavailableError when the backend is down. */
  ping (): Promise<void>
  close (): Promise<void>
}

/**
 * The backend cannot be reached (connection refused, timed out, closed, Redis loading...).
 * statusCode lets Fastify's error handling answer 503 without knowing about the store.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE'
  readonly statusCode = 503

  constructor (message = 'Limit store unavailable', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailableError'
  }
}

/** A throwing subscriber must not break delivery to the others, nor crash the process. */
export function deliver (onMessage: (message: string) => void, message: string): void {
  try {
    onMessage(message)
  } catch (err) {
    process.emitWarning(`LimitStore subscriber threw: ${String(err)}`, 'LimitStoreWarning')
  }
}
