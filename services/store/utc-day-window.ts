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

/** Days since the epoch, UTC: a cheap test of whether two instants fall on the same UTC day. */
export function utcDayNumber (now = Date.now()): number {
  return Math.floor(now / DAY_MS)
}

/** The UTC day containing `now`: daily quotas reset at UTC midnight on every instance alike. */
export function utcDayWindow (now = Date.now()): UtcDayWindow {
  if (!Number.isFinite(now)) throw new RangeError('now must be a finite epoch ms')
  const start = utcDayNumber(now) * DAY_MS
  const end = start + DAY_MS
  const periodStart = new Date(start).toISOString()
  return {
    periodStart,
    periodEnd: new Date(end).toISOString(),
    ttlMs: Math.ceil(end - now),
    dayKey: periodStart.slice(0, 10)
  }
}
