import { createHash } from 'node:crypto'
import type { compile as Compile, JSONSchema } from 'json-schema-to-typescript'
import { withoutCodeKeywords } from '../tools/schema-validation.ts'

/** What the declarations are made from: any tool whose schemas are JSON Schema. */
export interface DeclaredTool {
  name: string
  description: string
  argsSchema: unknown
  resultSchema?: unknown
}

export interface ToolDeclarations {
  text: string
  /** A strong ETag: the hash of the text. */
  etag: string
}

const HEADER = `// TypeScript declarations of what a tenant-enclave script may call: the tools this token is
// permitted and this tenant enabled, with their arguments and results, and console.
// A script is the body of an async function. To type-check one against this file, wrap it:
//   async function script (): Promise<unknown> { ...your script... }
// and compile both with --strict and lib es2023 only (no DOM, no @types/node: a script has no
// fetch, timers, require or process).
`

const CONSOLE = `interface EnclaveConsole {
  log (...data: unknown[]): void
  info (...data: unknown[]): void
  warn (...data: unknown[]): void
  error (...data: unknown[]): void
  debug (...data: unknown[]): void
}
/** Captured: the lines come back in the result's \`logs\`. */
declare const console: EnclaveConsole
`

const COMPILE_OPTIONS = {
  bannerComment: '',
  format: true,
  // Only local $refs: a schema must never make the service read a file or a URL.
  $refOptions: { resolve: { external: false, file: false, http: false } }
} as unknown as Parameters<typeof Compile>[2]

/** A PascalCase identifier from a tool name (`data:query` → `DataQuery`). */
function typeName (tool: string): string {
  const name = tool.split(/[^A-Za-z0-9]+/).filter((part) => part !== '').map((part) => part[0].toUpperCase() + part.slice(1)).join('')
  return /^[A-Za-z]/.test(name) ? name : `T${name}`
}

/**
 * A clean copy: TypeBox's symbols dropped, titles removed so that no nested type is named after
 * one, no keyword that writes raw TypeScript (tools stored before they were stripped at
 * registration), and no description that could close its JSDoc comment and go on as code.
 */
function plainSchema (schema: unknown): JSONSchema {
  const copy = JSON.parse(JSON.stringify(withoutCodeKeywords(schema ?? {})), (key, value) => {
    if (key === 'title' && typeof value === 'string') return undefined
    if (key === 'description' && typeof value === 'string') return value.replace(/\*\//g, '*\\/')
    return value
  }) as unknown
  return (copy !== null && typeof copy === 'object' && !Array.isArray(copy) ? copy : {}) as JSONSchema
}

// json-schema-to-typescript notes which pattern an index signature came from; noise in a prompt.
const PATTERN_NOTE = /^\s*\/\*\*\n\s*\* This interface was referenced by [^\n]*\n\s*\* via the `patternProperty` [^\n]*\n\s*\*\/\n/gm

async function declarationsOf (schema: unknown, root: string): Promise<string> {
  // Loaded on first use: it takes seconds to import on a busy machine, and most starts never need it.
  const { compile } = await import('json-schema-to-typescript')
  try {
    return (await compile(plainSchema(schema), root, COMPILE_OPTIONS)).replace(PATTERN_NOTE, '')
  } catch {
    // A schema the generator cannot read (an external $ref, say) types nothing rather than lying.
    return `export type ${root} = unknown;\n`
  }
}

const declaredNames = (text: string): Set<string> => new Set([...text.matchAll(/^export (?:interface|type|enum|const enum|declare enum) (\w+)/gm)].map((m) => m[1]))

const indent = (text: string, by: string): string => text.trimEnd().split('\n').map((line) => line === '' ? line : by + line).join('\n')

function jsDoc (text: string, by: string): string {
  return `${by}/**\n${text.replace(/\*\//g, '*\\/').split('\n').map((line) => `${by} * ${line}`.trimEnd()).join('\n')}\n${by} */\n`
}

/**
 * The declarations for these tools: per tool a namespace `Tools.<Name>` holding `Args` and
 * `Result` (and whatever named types their schemas define), and one `callTool` overload per tool
 * with its description as JSDoc. With no tool, `callTool` accepts nothing.
 */
export async function generateToolDeclarations (tools: DeclaredTool[]): Promise<string> {
  const sorted = [...tools].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  const used = new Set<string>()
  const namespaces: string[] = []
  const overloads: string[] = []
  for (const tool of sorted) {
    let name = typeName(tool.name)
    for (let i = 2; used.has(name); i++) name = `${typeName(tool.name)}${i}`
    used.add(name)
    const args = await declarationsOf(tool.argsSchema, 'Args')
    const result = tool.resultSchema === undefined ? 'export type Result = unknown;\n' : await declarationsOf(tool.resultSchema, 'Result')
    const argsNames = declaredNames(args)
    const clash = [...declaredNames(result)].some((n) => argsNames.has(n))
    // Names the two schemas both define would collide: the result's then get a namespace of their own.
    const body = clash
      ? `${args}\nexport namespace ResultTypes {\n${indent(result, '  ')}\n}\nexport type Result = ResultTypes.Result;\n`
      : `${args}\n${result}`
    namespaces.push(`${jsDoc(`\`${tool.name}\`: ${tool.description}`, '')}declare namespace Tools.${name} {\n${indent(body, '  ')}\n}\n`)
    overloads.push(`${jsDoc(tool.description, '')}declare function callTool (name: ${JSON.stringify(tool.name)}, args: Tools.${name}.Args): Promise<Tools.${name}.Result>\n`)
  }
  if (overloads.length === 0) overloads.push('/** This token may call no tool. */\ndeclare function callTool (name: never, args: never): Promise<never>\n')
  return [HEADER, ...namespaces, ...overloads, CONSOLE].join('\n')
}

/**
 * Declarations cached by what they are made from (the callable tools' names, descriptions and
 * schemas): a new permission set, a tool enabled or disabled, a changed schema, each is a new
 * key, so nothing needs invalidating and callers with the same callable set share one entry.
 */
export class ToolDeclarationCache {
  private readonly entries = new Map<string, Promise<ToolDeclarations>>()
  private readonly maxEntries: number

  constructor (maxEntries = 1000) {
    this.maxEntries = maxEntries
  }

  async get (tools: DeclaredTool[]): Promise<ToolDeclarations> {
    const key = createHash('sha256').update(JSON.stringify([...tools]
      .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      .map((tool) => [tool.name, tool.description, tool.argsSchema ?? null, tool.resultSchema ?? null]))).digest('hex')
    let entry = this.entries.get(key)
    if (entry !== undefined) {
      // Most recently used last, so the oldest unused entry goes first.
      this.entries.delete(key)
      this.entries.set(key, entry)
      return await entry
    }
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string)
    entry = generateToolDeclarations(tools).then((text) => ({ text, etag: `"${createHash('sha256').update(text).digest('base64url')}"` }))
    this.entries.set(key, entry)
    entry.catch(() => { this.entries.delete(key) })
    return await entry
  }
}
