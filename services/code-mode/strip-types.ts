import { createRequire } from 'node:module'
import { importHeader } from '../enclave/index.ts'

export type ScriptLanguage = 'javascript' | 'typescript'

export type StripOutcome =
  | { ok: true, code: string }
  | { ok: false, message: string, line: number, column: number }

interface Amaro { transformSync: (code: string, options: { mode: 'strip-only' }) => { code: string } }
interface AmaroError { code?: string, message?: string, startLine?: number, startColumn?: number }

// The code is a function body (top-level return and await): it is stripped inside the same
// one-line wrapper the parser uses, so only line 1's columns shift.
const PREFIX = '(async function () {'
const SUFFIX = '\n})'

const require = createRequire(import.meta.url)
let amaro: Amaro | undefined

/**
 * amaro (Node's own type stripper: swc compiled to WebAssembly). Loaded on first use, and loaded
 * afresh after an error that is not a syntax report: a stack overflow inside the WebAssembly can
 * leave the instance's memory broken, and every later call would fail with it.
 */
function stripper (): Amaro {
  amaro ??= require('amaro') as Amaro
  return amaro
}

function discardStripper (): void {
  for (const key of Object.keys(require.cache)) {
    if (key.includes('/node_modules/amaro/')) Reflect.deleteProperty(require.cache, key)
  }
  amaro = undefined
}

/**
 * TypeScript to JavaScript by erasing types in place (strip-only): every line and column of the
 * output is the source's, so later syntax errors and STRICT findings point at what was written.
 * TS syntax that would need code generated (enums, namespaces with values, parameter properties)
 * is refused with its position. Types are not checked.
 */
export function stripTypes (code: string): StripOutcome {
  // Import declarations cannot stand in a function body: the script's leading ones are stripped
  // as a module of their own (`import type`, `type` specifiers), the rest with them blanked out.
  const header = importHeader(code)
  const end = header.ok && header.imports.length > 0 ? header.imports[header.imports.length - 1].end : 0
  if (end === 0) return stripBody(code)
  let head: string
  try {
    head = stripper().transformSync(code.slice(0, end), { mode: 'strip-only' }).code
  } catch {
    head = code.slice(0, end) // left as written: the parse after stripping reports what is wrong
  }
  const body = stripBody(code.slice(0, end).replace(/[^\r\n]/g, ' ') + code.slice(end))
  if (!body.ok || head.length !== end) return body
  return { ok: true, code: head + body.code.slice(end) }
}

function stripBody (code: string): StripOutcome {
  const source = PREFIX + code + SUFFIX
  let output: string
  try {
    output = stripper().transformSync(source, { mode: 'strip-only' }).code
  } catch (err) {
    const e = err as AmaroError
    if ((e.code === 'UnsupportedSyntax' || e.code === 'InvalidSyntax') && typeof e.startLine === 'number' && typeof e.startColumn === 'number') {
      const line = e.startLine
      const column = (line === 1 ? e.startColumn - PREFIX.length : e.startColumn) + 1
      // swc calls the wrapper's closing line what a parser of the code alone calls its end.
      const lines = code.split('\n')
      const at = line > lines.length ? { line: lines.length, column: lines[lines.length - 1].length + 1 } : { line, column: Math.max(1, column) }
      const kind = e.code === 'UnsupportedSyntax' ? 'Unsupported TypeScript' : 'SyntaxError'
      return { ok: false, message: `${kind}: ${String(e.message).replace(/ in strip-only mode$/, ' (only type annotations can be erased)')} (line ${at.line}, column ${at.column})`, ...at }
    }
    discardStripper()
    const message = err instanceof RangeError || (err as Error)?.name === 'RuntimeError'
      ? 'SyntaxError: Code is nested too deeply to parse (line 1, column 1)'
      : 'SyntaxError: The TypeScript could not be read (line 1, column 1)'
    return { ok: false, message, line: 1, column: 1 }
  }
  // Strip-only keeps every offset, so the wrapper is where it was put.
  if (output.length !== source.length || !output.startsWith(PREFIX) || !output.endsWith(SUFFIX)) {
    throw new Error('type stripping moved the code: positions would no longer match the source')
  }
  return { ok: true, code: output.slice(PREFIX.length, output.length - SUFFIX.length) }
}
