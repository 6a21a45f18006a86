/** The words of a `?search=` query, lower-cased; an empty query has none and matches everything. */
export function searchWords (search: string | undefined): string[] {
  return (search ?? '').toLowerCase().split(/\s+/).filter((word) => word !== '')
}

/**
 * Whether a tool matches every word (case-insensitive), each found in its name or description.
 * Words match inside longer ones, so `query` finds `data:query` and `doc` finds "documents".
 */
export function matchesSearch (words: string[], tool: { name: string, description: string }): boolean {
  const text = `${tool.name}\n${tool.description}`.toLowerCase()
  return words.every((word) => text.includes(word))
}
