import type { Tool } from './api.ts'

export interface ToolCompletion {
  name: string
  /** Argument type or schema summary shown beside the name. */
  detail: string
  info: string
  /** Top-level argument names, for completion inside the args object. */
  args: string[]
}

/**
 * Reads the tools out of GET /api/tools.d.ts: one `callTool` overload per tool, its description
 * as the JSDoc above it. Tolerant by design: anything it cannot read is just not offered.
 */
export function parseToolsDts (dts: string): ToolCompletion[] {
  const out: ToolCompletion[] = []
  // The JSDoc right above an overload (one comment: no `*/` inside), then the overload itself.
  const re = /(?:\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*)?(?:declare\s+)?(?:function\s+)?callTool\s*\(\s*name\s*:\s*(['"])([^'"]+)\2\s*,\s*args\s*\??\s*:\s*/g
  let m: RegExpExecArray | null
  while ((m = re.exec(dts)) !== null) {
    const info = (m[1] ?? '').split('\n').map((l) => l.replace(/^\s*\*\s?/, '').trim()).filter(Boolean).join(' ')
    const detail = readBalanced(dts, re.lastIndex)
    out.push({ name: m[3] as string, detail: detail.replace(/\s+/g, ' ').slice(0, 120), info, args: topLevelKeys(detail) })
  }
  return out
}

// The argument type runs until the `)` that closes callTool's parameter list.
function readBalanced (text: string, start: number): string {
  let depth = 0
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (c === '{' || c === '(' || c === '[' || c === '<') depth++
    else if (c === '}' || c === ']' || c === '>') depth--
    else if (c === ')') { if (depth === 0) return text.slice(start, i); depth-- }
  }
  return text.slice(start)
}

function topLevelKeys (type: string): string[] {
  const t = type.trim()
  if (!t.startsWith('{')) return []
  const keys: string[] = []
  let depth = 0
  let token = ''
  for (let i = 1; i < t.length; i++) {
    const c = t[i] as string
    if ('{[(<'.includes(c)) depth++
    else if ('}])>'.includes(c)) depth--
    if (depth === 0 && (c === ':')) {
      const name = /([A-Za-z_$][\w$]*)\??\s*$/.exec(token)?.[1]
      if (name !== undefined) keys.push(name)
      token = ''
    } else if (depth === 0 && (c === ';' || c === ',' || c === '\n')) token = ''
    else if (depth === 0) token += c
  }
  return keys
}

/** The same from GET /api/tools, for servers without tools.d.ts: only tools the caller may call. */
export function completionsFromTools (tools: Tool[]): ToolCompletion[] {
  return tools.filter((t) => t.enabled && t.permitted).map((t) => {
    const schema = t.argsSchema as { properties?: Record<string, unknown> } | undefined
    const args = Object.keys(schema?.properties ?? {})
    return { name: t.name, detail: `{ ${args.join(', ')} }`, info: t.description, args }
  })
}

/**
 * One list, the .d.ts first (it has the types), then anything only /api/tools named. Where the
 * .d.ts names the arguments by a type (`Tools.DataQuery.Args`), their names come from the schema.
 */
export function mergeCompletions (fromDts: ToolCompletion[], fromTools: ToolCompletion[]): ToolCompletion[] {
  const byName = new Map(fromTools.map((c) => [c.name, c]))
  const merged = fromDts.map((c) => c.args.length > 0 ? c : { ...c, args: byName.get(c.name)?.args ?? [] })
  const seen = new Set(fromDts.map((c) => c.name))
  return [...merged, ...fromTools.filter((c) => !seen.has(c.name))]
}
