// What describe_tools says about the sandbox modules: the ones this caller's scripts may import,
// how to import them, and on request their type declarations. A comment block after the tools'
// declarations, so the text stays one TypeScript file a model can read or type-check against.
import type { SandboxModule } from '../sandbox-modules/catalog.ts'

/** The modules a caller may import, and the declarations of some of them. */
export interface CallerModules {
  modules: () => Promise<SandboxModule[]>
  /** `declare module 'name' { ... }` blocks of these names (all importable by the caller). */
  moduleDeclarations: (names: string[]) => string
}

/**
 * The listing (always) and the declarations of `wanted` (those the caller may import; others are
 * named in a comment). Short on purpose: zod's declarations alone are hundreds of KB, so they
 * come only when asked for.
 */
export async function describeModules (caller: CallerModules, wanted: readonly string[]): Promise<string> {
  const modules = await caller.modules()
  if (modules.length === 0) return '// Scripts of this token may import no sandbox modules.\n'
  const first = modules[0].name
  const lines = [
    `// Sandbox modules scripts may import: \`import { … } from '${first}'\` at the top of the script, or \`await import('${first}')\` anywhere (string literals only; nothing else can be imported):`,
    ...modules.map((m) => `//   ${m.name} ${m.version}${m.description !== '' ? `: ${m.description}` : ''}`)
  ]
  const names = modules.map((m) => m.name)
  const found = wanted.filter((name) => names.includes(name))
  const missing = wanted.filter((name) => !names.includes(name))
  if (wanted.length === 0) lines.push(`// Their type declarations: describe_tools with {"modules": ["${first}"]}.`)
  if (missing.length > 0) lines.push(`// Not importable by scripts of this token: ${missing.join(', ')}`)
  const text = lines.join('\n') + '\n'
  return found.length === 0 ? text : `${text}${caller.moduleDeclarations(found)}`
}
