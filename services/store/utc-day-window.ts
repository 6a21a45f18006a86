const DAY_MS = 86_400_000

export interface UtcDayWindow {
  /** ISO time of this UTC day's midnight (inclusive). */
  periodStart: string
  /** ISO time of the next UTC midnight (exclusive): when daily quotas reset. */
  periodEnd: string
  /** ms from `now` until periodEnd; always >= 1. */
  ttlMs: number
  /** YYYY-MM-DD, for per-day counter keys. */
  dayKey: string
}

/** The UTC day containing `now`: daily quotas reset at UTC midnight on every instance alike. */
export function utcDayWindow (now = Date.now()): UtcDayWindow {
  if (!Number.isFinite(now)) throw new RangeError('now must be a finite epoch ms')
  const start = Math.floor(now / DAY_MS) * DAY_MS
  const end = start + DAY_MS
  const periodStart = new Date(start).toISOString()
  return {
    periodStart,
    periodEnd: new Date(end).toISOString(),
    ttlMs: Math.ceil(end - now),
    dayKey: periodStart.slice(0, 10)
  }
}
