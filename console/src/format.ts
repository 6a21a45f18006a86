/**
 * A duration in milliseconds as people read it, the one way the console shows any: `0.4 ms`,
 * `4.1 ms`, `3 ms`, `87 ms`, `1.2 s`, `30 s`, `2 min 5 s`. Timers report fractions of a millisecond
 * (`4.091842999972869`); more than one decimal is noise. null or undefined (not measured) is `–`.
 */
export function formatDuration (ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–'
  if (ms < 0) return `-${formatDuration(-ms)}`
  if (ms === 0) return '0 ms'
  if (ms < 0.05) return '< 0.1 ms'
  if (ms < 9.95) return `${oneDecimal(ms)} ms`
  if (ms < 999.5) return `${Math.round(ms)} ms`
  if (ms < 59_950) return `${oneDecimal(ms / 1000)} s`
  const seconds = Math.round(ms / 1000)
  const minutes = Math.floor(seconds / 60)
  return seconds % 60 === 0 ? `${minutes} min` : `${minutes} min ${seconds % 60} s`
}

/** One decimal, without a `.0` that would claim a precision whole milliseconds do not have. */
function oneDecimal (n: number): string {
  return n.toFixed(1).replace(/\.0$/, '')
}

/** A size in bytes as people read it: `512 B`, `1.5 KB`, `10 MB`, `1 GB` (units of 1024). */
export function formatBytes (bytes: number): string {
  if (!Number.isFinite(bytes)) return '–'
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return unit === 0 ? `${value} B` : `${value < 9.95 ? oneDecimal(value) : Math.round(value)} ${units[unit] as string}`
}
