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

// The last day's strings: every run asks for the window two or three times (admission, CPU
// charge, tool quota), and two Dates with their ISO strings were a few µs each time.
let lastDay: { day: number, periodStart: string, periodEnd: string, dayKey: string } | undefined

/** The UTC day containing `now`: daily quotas reset at UTC midnight on every instance alike. */
export function utcDayWindow (now = Date.now()): UtcDayWindow {
  if (!Number.isFinite(now)) throw new RangeError('now must be a finite epoch ms')
  const day = utcDayNumber(now)
  const end = (day + 1) * DAY_MS
  if (lastDay?.day !== day) {
    const periodStart = new Date(day * DAY_MS).toISOString()
    lastDay = { day, periodStart, periodEnd: new Date(end).toISOString(), dayKey: periodStart.slice(0, 10) }
  }
  return { periodStart: lastDay.periodStart, periodEnd: lastDay.periodEnd, ttlMs: Math.ceil(end - now), dayKey: lastDay.dayKey }
}
