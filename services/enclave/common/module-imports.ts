// Imports of sandbox modules in a script. A script is the body of an async function (see
// ast-check.ts), where `import` declarations are not JavaScript. So the leading import
// declarations are found by token (the header), blanked out for every parse (same length, newlines
// kept: every later position stays the source's), and for the run rewritten into
// `const { z } = await __enclaveImport('zod')`, as are literal `import('zod')` calls. Why a
// rewrite rather than compiling the script as an isolated-vm Module with a resolver: the script
// must stay a function body (top-level return is what scripts use to answer), and the modules are
// then plain values the runner loads into the run's context before the script starts.
import { parse, tokenizer, tokTypes as tt, type Token } from 'acorn'

/** The global the rewritten imports call (installed by the runner when a script imports anything). */
export const IMPORT_FUNCTION = '__enclaveImport'

/** An import declaration at the top of the script: [start, end) in the code, its module name. */
export interface HeaderImport { start: number, end: number, source: string, line: number, column: number }

/** A literal `import('name')` in the body: the offset of its `import` keyword. */
export interface DynamicImport { source: string, offset: number }

export interface ScriptImports { header: HeaderImport[], dynamic: DynamicImport[], modules: string[] }

export type HeaderOutcome =
  | { ok: true, imports: HeaderImport[] }
  | { ok: false, message: string, line: number, column: number }

/** What scripts may import, for messages. */
export function allowedText (modules: readonly string[]): string {
  return modules.length === 0 ? 'scripts may import no modules here' : `scripts may import only ${modules.join(', ')}`
}

/**
 * The import declarations the script starts with (comments and blank lines may sit between).
 * The first token that does not start a declaration ends the header; what follows is the body's.
 */
export function importHeader (code: string): HeaderOutcome {
  const imports: HeaderImport[] = []
  if (!code.includes('import')) return { ok: true, imports }
  const tokens = tokenizer(code, { ecmaVersion: 'latest', sourceType: 'module', locations: true, allowHashBang: false })
  const next = (): Token | undefined => {
    // A token the module grammar cannot read belongs to the body, whose own parse reports it.
    try { return tokens.getToken() } catch { return undefined }
  }
  const fail = (message: string, token: Token): HeaderOutcome => ({ ok: false, message: `${message} (line ${token.loc!.start.line}, column ${token.loc!.start.column + 1})`, line: token.loc!.start.line, column: token.loc!.start.column + 1 })
  let token = next()
  while (token?.type === tt._import) {
    const first = token
    let prev: Token = token
    let cur = next()
    // `import(` and `import.meta` are expressions: the body's.
    if (cur === undefined || cur.type === tt.parenL || cur.type === tt.dot) break
    while (cur !== undefined && cur.type !== tt.string) {
      if (cur.type === tt.eof || cur.type === tt.semi || cur.type === tt.eq) {
        return fail("SyntaxError: an import must read `import … from 'module'` (`import … = require()` is not supported)", cur)
      }
      prev = cur
      cur = next()
    }
    if (cur === undefined) return fail("SyntaxError: an import must read `import … from 'module'`", prev)
    if (prev !== first && !(prev.type === tt.name && (prev as Token & { value: unknown }).value === 'from')) return fail("SyntaxError: an import must read `import … from 'module'`", cur)
    let end = cur.end
    let after = next()
    if (after?.type === tt._with || (after?.type === tt.name && (after as Token & { value: unknown }).value === 'assert')) return fail('SyntaxError: import attributes are not supported', after)
    if (after?.type === tt.semi) { end = after.end; after = next() }
    imports.push({ start: first.start, end, source: (cur as Token & { value: string }).value, line: cur.loc!.start.line, column: cur.loc!.start.column + 1 })
    token = after
  }
  return { ok: true, imports }
}

/** The code with the header's declarations turned to spaces (newlines kept): positions unchanged. */
export function blankImports (code: string, imports: readonly HeaderImport[]): string {
  if (imports.length === 0) return code
  let out = ''
  let at = 0
  for (const imp of imports) {
    out += code.slice(at, imp.start) + code.slice(imp.start, imp.end).replace(/[^\r\n]/g, ' ')
    at = imp.end
  }
  return out + code.slice(at)
}

interface Specifier { type: string, local: { name: string }, imported?: { type: string, name?: string, value?: string } }

/** One declaration as the statement the run executes, on as many lines as the source took. */
function bindingFor (code: string, imp: HeaderImport): string {
  const text = code.slice(imp.start, imp.end)
  const program = parse(text, { ecmaVersion: 'latest', sourceType: 'module' }) as unknown as { body: Array<{ specifiers: Specifier[] }> }
  const specifiers = program.body[0].specifiers
  const load = `await ${IMPORT_FUNCTION}(${JSON.stringify(imp.source)})`
  const namespace = specifiers.find((s) => s.type === 'ImportNamespaceSpecifier')
  const fields = specifiers.filter((s) => s.type !== 'ImportNamespaceSpecifier').map((s) => {
    if (s.type === 'ImportDefaultSpecifier') return `default: ${s.local.name}`
    const imported = s.imported!.type === 'Identifier' ? s.imported!.name! : JSON.stringify(s.imported!.value)
    return `${imported}: ${s.local.name}`
  })
  let statement: string
  if (namespace !== undefined) {
    statement = `const ${namespace.local.name} = ${load};` + (fields.length > 0 ? ` const { ${fields.join(', ')} } = ${namespace.local.name};` : '')
  } else if (fields.length > 0) {
    statement = `const { ${fields.join(', ')} } = ${load};`
  } else {
    statement = `${load};`
  }
  return statement + text.replace(/[^\n]/g, '')
}

/**
 * The code the isolate runs: header declarations as bindings, literal `import('x')` calls as
 * `__enclaveImport('x')`. Only lines of the header's own statements can change their columns.
 */
export function rewriteImports (code: string, imports: ScriptImports): string {
  if (imports.header.length === 0 && imports.dynamic.length === 0) return code
  let out = ''
  let at = 0
  const edits = [
    ...imports.header.map((imp) => ({ start: imp.start, end: imp.end, text: bindingFor(code, imp) })),
    ...imports.dynamic.map((d) => ({ start: d.offset, end: d.offset + 'import'.length, text: IMPORT_FUNCTION }))
  ].sort((a, b) => a.start - b.start)
  for (const edit of edits) {
    out += code.slice(at, edit.start) + edit.text
    at = edit.end
  }
  return out + code.slice(at)
}
