import { parse, type Node, type Options } from 'acorn'

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

function where (node: Node): string {
  const loc = node.loc?.start
  return loc === undefined ? '' : ` (line ${loc.line}, column ${column(loc.line, loc.column) + 1})`
}

/** A syntax error as a message with line and column, or null when the code parses. */
export function syntaxError (code: string): string | null {
  try {
    parseBody(code)
    return null
  } catch (err) {
    return formatAcornError(err, code)
  }
}

function formatAcornError (err: unknown, code: string): string {
  const e = err as { message?: string, loc?: { line: number, column: number } }
  const text = String(e.message ?? err).replace(/\s*\(\d+:\d+\)$/, '')
  if (e.loc === undefined) return `SyntaxError: ${text}`
  const lines = code.split('\n')
  // An error on the wrapper's closing line means the code ended early (e.g. an open brace):
  // report the end of the code, as a parser of the code alone would.
  if (e.loc.line > lines.length) return `SyntaxError: ${text} (line ${lines.length}, column ${column(lines.length, lines[lines.length - 1].length + (lines.length === 1 ? PREFIX.length : 0)) + 1})`
  return `SyntaxError: ${text} (line ${e.loc.line}, column ${column(e.loc.line, e.loc.column) + 1})`
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

/**
 * STRICT's first wall: parse with acorn and refuse constructs that lead to code generation or
 * host-ish features. Returns a message with line and column, or null when the code may run.
 * Dynamic tricks (`x['constr' + 'uctor']`) pass here and meet the second wall in the isolate.
 */
export function checkStrict (code: string): string | null {
  let body: AnyNode
  try {
    body = parseBody(code)
  } catch (err) {
    return formatAcornError(err, code)
  }
  const stack: Array<[AnyNode, AnyNode | undefined, string]> = [[body, undefined, '']]
  while (stack.length > 0) {
    const [node, parent, key] = stack.pop()!
    const problem = inspect(node, parent, key)
    if (problem !== null) return `Forbidden construct: ${problem}${where(node)}`
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
  return null
}

function inspect (node: AnyNode, parent: AnyNode | undefined, key: string): string | null {
  switch (node.type) {
    case 'WithStatement': return '`with` statements are not allowed'
    case 'ImportExpression': return 'dynamic `import()` is not allowed'
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
