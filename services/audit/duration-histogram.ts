// The median duration a day shows in the usage history is read from a histogram kept in the
// daily rollup, not from the audit rows: an approximation, named `p50DurationMs` as before.
// Bucket i counts runs with BOUNDS[i] <= duration < BOUNDS[i + 1] (the last is open): 0 ms,
// then edges a factor √2 apart from 1 ms to about 6 minutes, past any run's timeout. The
// median answered is the geometric middle of its bucket, within √√2 (±19 %) of the truth.
// The migration computes the same buckets in SQL with width_bucket over the same edges.

export const HISTOGRAM_BOUNDS: readonly number[] = [0, ...Array.from({ length: 38 }, (_, i) => Math.round(2 ** (i / 2)))]
  .filter((edge, i, all) => i === 0 || edge > all[i - 1]!)

export const HISTOGRAM_BUCKETS = HISTOGRAM_BOUNDS.length

/** The bucket a duration falls in (the count of edges at or below it, minus one: width_bucket's answer - 1). */
export function bucketOf (durationMs: number): number {
  let lo = 0
  let hi = HISTOGRAM_BOUNDS.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (HISTOGRAM_BOUNDS[mid]! <= durationMs) lo = mid
    else hi = mid - 1
  }
  return lo
}

export const emptyHistogram = (): number[] => new Array<number>(HISTOGRAM_BUCKETS).fill(0)

/** The approximate median of the counts, in ms; 0 for no runs. */
export function histogramMedian (counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0)
  if (total === 0) return 0
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!
    if (seen * 2 >= total) {
      const low = HISTOGRAM_BOUNDS[i]!
      const high = HISTOGRAM_BOUNDS[i + 1] ?? low * Math.SQRT2
      return low === 0 ? 0 : Math.round(Math.sqrt(low * high))
    }
  }
  return 0
}
