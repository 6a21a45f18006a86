/** Levenshtein distance (insert, delete, substitute; each costs 1), two rows of memory. */
export function editDistance (a: string, b: string): number {
  if (a === b) return 0
  if (a.length === 0) return b.length
  if (b.length === 0) return a.length
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  let current = new Array<number>(b.length + 1)
  for (let i = 1; i <= a.length; i++) {
    current[0] = i
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution)
    }
    [previous, current] = [current, previous]
  }
  return previous[b.length] as number
}

/**
 * The candidates close enough to `input` to be what was meant, nearest first (at most `max`):
 * an edit distance of at most a third of the longer name (at least 1, at most 4), compared
 * without case. A candidate equal to the input is not a suggestion.
 */
export function closestNames (input: string, candidates: Iterable<string>, max = 3): string[] {
  const needle = input.toLowerCase()
  const scored: Array<{ name: string, distance: number }> = []
  for (const name of new Set(candidates)) {
    if (name === input) continue
    const distance = editDistance(needle, name.toLowerCase())
    const allowed = Math.min(4, Math.max(1, Math.floor(Math.max(needle.length, name.length) / 3)))
    if (distance <= allowed) scored.push({ name, distance })
  }
  scored.sort((x, y) => x.distance - y.distance || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
  return scored.slice(0, max).map((entry) => entry.name)
}

/** ` (did you mean 'a' or 'b'?)`, or '' when nothing is close. */
export function didYouMean (input: string, candidates: Iterable<string>): string {
  const names = closestNames(input, candidates).map((name) => `'${name}'`)
  if (names.length === 0) return ''
  const last = names.pop() as string
  return ` (did you mean ${names.length === 0 ? last : `${names.join(', ')} or ${last}`}?)`
}
