import { parse, type Node, type Options } from 'acorn'
import { allowedText, blankImports, importHeader, rewriteImports, type ScriptImports } from './module-imports.ts'

// The code is the body of an async function (top-level `return`, `await`, `using`, `new.target`),
// so it is parsed as one: wrapped on its first line, with positions on that line shifted back.
const PREFIX = '(async function () {'
const SUFFIX = '\n})'
const PARSE_OPTIONS: Options = { ecmaVersion: 'latest', sourceType: 'script', allowHashBang: false, locations: true }

// Names whose mere use is refused in STRICT: code generation, shared memory, wasm, finalizers.
const FORBIDDEN_IDENTIFIERS = new Set([
  'eval', 'Function', 'AsyncFunction', 'GeneratorFunction', 'AsyncGeneratorFunction',
  'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry'
])

// Properties that lead to constructors, prototypes or stack internals.
const FORBIDDEN_PROPERTIES = new Set([
  'constructor', '__proto__', '__defineGetter__', '__defineSetter__', '__lookupGetter__',
  '__lookupSetter__', 'prepareStackTrace', 'captureStackTrace', 'caller', 'callee'
])

type AnyNode = Node & Record<string, unknown>

class BodySyntaxError extends Error {
  readonly loc: { line: number, column: number }
  constructor (message: string, loc: { line: number, column: number }) {
    super(message)
    this.loc = loc
  }
}

function column (line: number, col: number): number {
  return line === 1 ? col - PREFIX.length : col
}

/** The function body's statements, or a throw with the position the user wrote. */
function parseBody (code: string): AnyNode {
  const program = parse(PREFIX + code + SUFFIX, PARSE_OPTIONS) as unknown as AnyNode
  const statements = program.body as AnyNode[]
  const fn = statements[0]?.expression as AnyNode | undefined
  // The function must end at the wrapper's own closing brace, just before its parenthesis.
  if (statements.length !== 1 || fn?.type !== 'FunctionExpression' || fn.end !== PREFIX.length + code.length + SUFFIX.length - 1) {
    // The code closed the function early (`}) ... (function () {`): point at that brace.
    const end = fn?.type === 'FunctionExpression' ? (fn.loc as { end: { line: number, column: number } }).end : { line: 1, column: PREFIX.length }
    throw new BodySyntaxError("Unexpected token '}'", { line: end.line, column: end.column - 1 })
  }
  return fn.body as AnyNode
}

function position (node: Node): { line: number, column: number } {
  const loc = node.loc!.start
  return { line: loc.line, column: column(loc.line, loc.column) + 1 }
}

/** What the checks found, with 1-based line and column in the code as written. */
export interface ScriptProblem {
  message: string
  line: number
  column: number
}

/** A `callTool(...)` call whose tool name is a string the parser can read. */
export interface LiteralToolCall {
  name: string
  line: number
  column: number
}

export interface ScriptAnalysis {
  /** The syntax error, or every forbidden construct (STRICT), in source order. */
  problems: ScriptProblem[]
  toolCalls: LiteralToolCall[]
  /** Calls (or other uses) of `callTool` whose tool name cannot be read without running the code. */
  dynamicToolCalls: number
  /** Sandbox modules the script imports (header declarations, literal `import()`), allowed ones only. */
  imports: ScriptImports
}

export interface AnalyzeOptions {
  strict: boolean
  /** The sandbox modules this script may import; none when absent. */
  modules?: readonly string[]
}

/**
 * The one parse and walk behind a run's checks and the pre-flight check route: parse the code as
 * a function body; with `strict`, collect every construct STRICT refuses; also list the
 * `callTool` calls. A run keeps only the first problem; the check route reports them all.
 */
export function analyzeScript (code: string, options: AnalyzeOptions): ScriptAnalysis {
  const allowed = options.modules ?? []
  const imports: ScriptImports = { header: [], dynamic: [], modules: [] }
  const header = importHeader(code)
  if (!header.ok) return { problems: [{ message: header.message, line: header.line, column: header.column }], toolCalls: [], dynamicToolCalls: 0, imports }
  let body: AnyNode
  try {
    body = parseBody(blankImports(code, header.imports))
  } catch (err) {
    return { problems: [parseProblem(err, code)], toolCalls: [], dynamicToolCalls: 0, imports }
  }
  const analysis: ScriptAnalysis = { problems: [], toolCalls: [], dynamicToolCalls: 0, imports }
  // Imports are the same rule at every level: allowed modules by name, nothing else.
  for (const imp of header.imports) {
    if (allowed.includes(imp.source)) imports.header.push(imp)
    else analysis.problems.push(notAllowed(imp.source, imp, allowed))
  }
  // Iterative walk: a deep AST that acorn could still build must not overflow this stack.
  const stack: Array<[AnyNode, AnyNode | undefined, string]> = [[body, undefined, '']]
  while (stack.length > 0) {
    const [node, parent, key] = stack.pop()!
    if (options.strict) {
      const problem = inspect(node, parent, key)
      if (problem !== null) {
        const at = position(node)
        analysis.problems.push({ message: `Forbidden construct: ${problem} (line ${at.line}, column ${at.column})`, ...at })
      }
    }
    noteToolCall(node, parent, key, analysis)
    if (node.type === 'ImportExpression') noteImport(node, analysis, allowed)
    else if (options.strict && node.type === 'CallExpression' && (node.callee as AnyNode).type === 'Identifier' && (node.callee as AnyNode).name === 'require') {
      const at = position(node)
      analysis.problems.push({ message: `Forbidden construct: \`require()\` is not available, use \`import … from\`; ${allowedText(allowed)} (line ${at.line}, column ${at.column})`, ...at })
    }
    for (const k in node) {
      if (k === 'loc' || k === 'start' || k === 'end' || k === 'type') continue
      const child = node[k]
      if (Array.isArray(child)) {
        for (let i = child.length - 1; i >= 0; i--) {
          const c = child[i] as AnyNode | null
          if (c !== null && typeof c === 'object' && typeof c.type === 'string') stack.push([c, node, k])
        }
      } else if (child !== null && typeof child === 'object' && typeof (child as AnyNode).type === 'string') {
        stack.push([child as AnyNode, node, k])
      }
    }
  }
  const modules = new Set([...imports.header.map((i) => i.source), ...imports.dynamic.map((d) => d.source)])
  imports.modules = [...modules]
  return analysis
}

function notAllowed (source: string, at: { line: number, column: number }, allowed: readonly string[]): ScriptProblem {
  return { message: `Module '${source}' cannot be imported: ${allowedText(allowed)} (line ${at.line}, column ${at.column})`, line: at.line, column: at.column }
}

/** `import('name')` of an allowed name is kept (and rewritten for the run); any other is refused. */
function noteImport (node: AnyNode, analysis: ScriptAnalysis, allowed: readonly string[]): void {
  const at = position(node)
  const source = staticKey(node.source as AnyNode, true)
  if (source === undefined) {
    analysis.problems.push({ message: `Forbidden construct: import() needs a string literal naming a module; ${allowedText(allowed)} (line ${at.line}, column ${at.column})`, ...at })
  } else if (!allowed.includes(source)) {
    analysis.problems.push(notAllowed(source, at, allowed))
  } else {
    analysis.imports.dynamic.push({ source, offset: node.start - PREFIX.length })
  }
}

/** A syntax error as a message with line and column, or null when the code parses. */
export function syntaxError (code: string): string | null {
  return analyzeScript(code, { strict: false }).problems[0]?.message ?? null
}

/**
 * STRICT's first wall: parse with acorn and refuse constructs that lead to code generation or
 * host-ish features. Returns a message with line and column, or null when the code may run.
 * Dynamic tricks (`x['constr' + 'uctor']`) pass here and meet the second wall in the isolate.
 */
export function checkStrict (code: string): string | null {
  return analyzeScript(code, { strict: true }).problems[0]?.message ?? null
}

export type PreparedScript = { ok: true, code: string, modules: string[] } | { ok: false, message: string }

/**
 * What a run executes: with `strict`, STRICT's checks; at every level, the import rules (allowed
 * modules by literal name only); then the imports rewritten for the isolate (module-imports.ts).
 */
export function prepareScript (code: string, strict: boolean, modules: readonly string[]): PreparedScript {
  if (!strict && !code.includes('import')) return { ok: true, code, modules: [] }
  const analysis = analyzeScript(code, { strict, modules })
  const problem = analysis.problems[0]
  if (problem !== undefined) return { ok: false, message: problem.message }
  return { ok: true, code: rewriteImports(code, analysis.imports), modules: analysis.imports.modules }
}

function parseProblem (err: unknown, code: string): ScriptProblem {
  // acorn is a recursive-descent parser: code nested deeply enough (100,000 parentheses, or
  // `!!!…!x`) exhausts the stack. Caught here, where it has unwound, it is an answer, not a crash.
  if (err instanceof RangeError) return { message: 'SyntaxError: Code is nested too deeply to parse (line 1, column 1)', line: 1, column: 1 }
  const e = err as { message?: string, loc?: { line: number, column: number } }
  const text = String(e.message ?? err).replace(/\s*\(\d+:\d+\)$/, '')
  if (e.loc === undefined) return { message: `SyntaxError: ${text}`, line: 1, column: 1 }
  const lines = code.split('\n')
  // An error on the wrapper's closing line means the code ended early (e.g. an open brace):
  // report the end of the code, as a parser of the code alone would.
  const at = e.loc.line > lines.length
    ? { line: lines.length, column: column(lines.length, lines[lines.length - 1].length + (lines.length === 1 ? PREFIX.length : 0)) + 1 }
    : { line: e.loc.line, column: column(e.loc.line, e.loc.column) + 1 }
  return { message: `SyntaxError: ${text} (line ${at.line}, column ${at.column})`, ...at }
}

/**
 * Lists `callTool('name', …)` (a string or a template without expressions); any other use of
 * `callTool` as a value (a computed name, an alias, `.call`) counts as dynamic. A local binding
 * named callTool is not told apart: the check reports what a reader of the text would assume.
 */
function noteToolCall (node: AnyNode, parent: AnyNode | undefined, key: string, analysis: ScriptAnalysis): void {
  if (node.type !== 'Identifier' || node.name !== 'callTool' || !isReference(parent, key)) return
  // Declarations and parameters that merely bind the name are not uses.
  if (parent !== undefined && (parent.type === 'VariableDeclarator' || parent.type.startsWith('Function') || parent.type === 'ArrowFunctionExpression') && key !== 'init' && key !== 'body') return
  if (parent?.type === 'CallExpression' && key === 'callee') {
    const first = (parent.arguments as AnyNode[])[0]
    const name = first === undefined ? undefined : staticKey(first, true)
    if (name !== undefined) {
      analysis.toolCalls.push({ name, ...position(parent) })
      return
    }
  }
  analysis.dynamicToolCalls++
}

function staticKey (node: AnyNode, computed: boolean): string | undefined {
  if (!computed && node.type === 'Identifier') return node.name as string
  if (node.type === 'Literal' && typeof node.value === 'string') return node.value
  if (node.type === 'TemplateLiteral') {
    const quasis = node.quasis as Array<{ value: { cooked: string | null } }>
    if ((node.expressions as unknown[]).length === 0 && quasis.length === 1) return quasis[0].value.cooked ?? undefined
  }
  return undefined
}

/** Whether an Identifier at parent[key] refers to a binding (rather than naming a property or label). */
function isReference (parent: AnyNode | undefined, key: string): boolean {
  if (parent === undefined) return true
  switch (parent.type) {
    case 'MemberExpression': return key !== 'property' || parent.computed === true
    case 'Property': case 'MethodDefinition': case 'PropertyDefinition':
      return key !== 'key' || parent.computed === true
    case 'LabeledStatement': case 'BreakStatement': case 'ContinueStatement': return key !== 'label'
    default: return true
  }
}

function inspect (node: AnyNode, parent: AnyNode | undefined, key: string): string | null {
  switch (node.type) {
    case 'WithStatement': return '`with` statements are not allowed'
    case 'MetaProperty':
      return (node.meta as AnyNode).name === 'import' ? '`import.meta` is not allowed' : null
    case 'Identifier': {
      const name = node.name as string
      if (FORBIDDEN_IDENTIFIERS.has(name) && isReference(parent, key)) return `\`${name}\` is not allowed`
      return null
    }
    case 'MemberExpression': {
      const name = staticKey(node.property as AnyNode, node.computed === true)
      if (name !== undefined && FORBIDDEN_PROPERTIES.has(name)) return `access to \`${name}\` is not allowed`
      return null
    }
    case 'Property': {
      const name = staticKey(node.key as AnyNode, node.computed === true)
      if (name === undefined) return null
      // Destructuring reads the property; an object literal's `__proto__:` sets the prototype.
      if (parent?.type === 'ObjectPattern' && FORBIDDEN_PROPERTIES.has(name)) return `access to \`${name}\` is not allowed`
      if (parent?.type === 'ObjectExpression' && name === '__proto__' && node.computed !== true) return 'setting `__proto__` is not allowed'
      return null
    }
    default: return null
  }
}
