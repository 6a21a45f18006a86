// Security corpus: constructor/Function escapes and code generation from strings. Each case
// asserts its exact outcome. SECURE meets the runtime wall (code generation disabled in the
// isolate); STRICT meets the AST check first.
import t from 'tap'
import { type Case, fail, ok, runCorpus } from './fixtures/helpers.ts'
import { loadModuleCatalog } from '../../services/sandbox-modules/catalog.ts'

const EVAL = { success: false, code: 'EXECUTION_ERROR', name: 'EvalError', message: 'Code generation from strings is disabled in the enclave' } as const
const AT = /^Forbidden construct: .+ \(line \d+, column \d+\)$/

const runtime: Case[] = [
  { name: 'Function()', code: 'return Function("return globalThis")()', expect: EVAL },
  { name: 'new Function()', code: 'return new Function("return 1")()', expect: EVAL },
  { name: 'arrow constructor', code: 'return (() => {}).constructor("return 1")()', expect: EVAL },
  { name: 'async arrow constructor', code: 'return (async () => {}).constructor("return 1")()', expect: EVAL },
  { name: 'generator constructor', code: 'return (function * () {}).constructor("yield 1")().next()', expect: EVAL },
  { name: 'async generator constructor', code: 'return (async function * () {}).constructor("yield 1")', expect: EVAL },
  { name: 'array literal constructor.constructor', code: 'return [].constructor.constructor("return 1")()', expect: EVAL },
  { name: 'string literal constructor.constructor', code: 'return "".constructor.constructor("return 1")()', expect: EVAL },
  { name: 'number literal constructor.constructor', code: 'return (1).constructor.constructor("return 1")()', expect: EVAL },
  { name: 'object literal constructor.constructor', code: 'return ({}).constructor.constructor("return 1")()', expect: EVAL },
  { name: 'regexp literal constructor.constructor', code: 'return /x/.constructor.constructor("return 1")()', expect: EVAL },
  { name: 'symbol constructor.constructor', code: 'return Symbol("s").constructor.constructor("return 1")()', expect: EVAL },
  { name: 'callTool.constructor', code: 'return callTool.constructor("return 1")()', expect: EVAL },
  { name: 'console.log.constructor', code: 'return console.log.constructor("return 1")()', expect: EVAL },
  { name: 'tool result object constructor.constructor', code: 'const r = await callTool("echo", { a: 1 })\nreturn r.constructor.constructor("return 1")()', expect: EVAL },
  { name: 'tool result array constructor.constructor', code: 'const r = await callTool("echo", [1])\nreturn r.constructor.constructor("return 1")()', expect: EVAL },
  { name: 'tool promise constructor.constructor', code: 'return callTool("echo", 1).constructor.constructor("return 1")()', expect: EVAL },
  { name: 'caught TypeError constructor.constructor', code: 'try { null.x } catch (e) { return e.constructor.constructor("return 1")() }', expect: EVAL },
  { name: 'caught tool error constructor.constructor', code: 'try { await callTool("deny") } catch (e) { return e.constructor.constructor("return 1")() }', expect: EVAL },
  { name: 'stack overflow RangeError constructor.constructor', code: 'function f () { f() }\ntry { f() } catch (e) { return e.constructor.constructor("return 1")() }', expect: EVAL },
  { name: 'eval()', code: 'return eval("1 + 1")', expect: EVAL },
  { name: 'indirect eval', code: 'return (0, eval)("1")', expect: EVAL },
  { name: 'globalThis.eval', code: 'return globalThis.eval("1")', expect: EVAL },
  { name: 'Reflect.construct(Function)', code: 'return Reflect.construct(Function, ["return 1"])()', expect: EVAL },
  { name: 'AsyncFunction via prototype', code: 'return Object.getPrototypeOf(async function () {}).constructor("return 1")', expect: EVAL },
  { name: 'GeneratorFunction via prototype', code: 'return Object.getPrototypeOf(function * () {}).constructor("yield 1")', expect: EVAL },
  { name: 'Function via property descriptor', code: 'return Object.getOwnPropertyDescriptor(Function.prototype, "constructor").value("return 1")', expect: EVAL },
  { name: 'Function.prototype.constructor.call', code: 'return Function.prototype.constructor.call(null, "return 1")()', expect: EVAL },
  { name: 'computed constructor key', code: 'const k = "constr" + "uctor"\nreturn [][k][k]("return this")()', expect: EVAL },
  { name: 'constructor cannot be redefined', code: 'try { Object.defineProperty(Function.prototype, "constructor", { value: 1 }) } catch (e) { return e.name }', expect: ok('TypeError') },
  { name: 'instanceof Function still works', code: 'return [(() => 1) instanceof Function, typeof Function, Function.name]', expect: ok([true, 'function', 'Function']) },
  { name: 'no timers', code: 'return setTimeout(() => 1, 0)', expect: fail('EXECUTION_ERROR', 'setTimeout is not defined', 'ReferenceError') },
  { name: 'no WebAssembly', code: 'return new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))', expect: fail('EXECUTION_ERROR', 'WebAssembly is not defined', 'ReferenceError') },
  { name: 'no SharedArrayBuffer, Atomics, FinalizationRegistry', code: 'return [typeof SharedArrayBuffer, typeof Atomics, typeof FinalizationRegistry]', expect: ok(['undefined', 'undefined', 'undefined']) },
  { name: 'dynamic import of a non-module refused before running', code: 'return await import("fs")', expect: fail('VALIDATION_ERROR', "Module 'fs' cannot be imported: scripts may import no modules here (line 1, column 14)") },
  { name: 'dynamic import of a computed name refused before running', code: 'const m = "f" + "s"\nreturn await import(m)', expect: fail('VALIDATION_ERROR', /^Forbidden construct: import\(\) needs a string literal naming a module; scripts may import no modules here \(line 2, column 14\)$/) },
  { name: 'with is allowed outside STRICT (sloppy code)', code: 'with ({ a: 7 }) { return a }', expect: ok(7) },
  { name: 'arguments.callee.caller is refused', code: 'return arguments.callee.caller', expect: fail('EXECUTION_ERROR', /may not be accessed/, 'TypeError') },
  {
    name: 'stack frames never expose enclave functions',
    code: [
      'const fns = []',
      'Error.prepareStackTrace = (e, frames) => { for (const f of frames) { const fn = f.getFunction(); if (fn) fns.push(fn.name) } return "" }',
      'const probe = { toJSON () { new Error().stack; return 1 } }',
      'await callTool("echo", probe)',
      'console.log(probe)',
      'try { await callTool("deny") } catch (e) { e.stack }',
      'return fns'
    ].join('\n'),
    expect: ok(['toJSON', 'toJSON'])
  },
  {
    name: 'patched call/apply/bind capture nothing of the enclave',
    code: [
      'const caught = []',
      'for (const m of ["call", "apply", "bind"]) { const o = Function.prototype[m]; Function.prototype[m] = function (...a) { caught.push(this); return Reflect.apply(o, this, a) } }',
      'await callTool("echo", 1)',
      'console.log("x")',
      'try { await callTool("deny") } catch {}',
      'return caught.length'
    ].join('\n'),
    expect: ok(0)
  }
]

const strict: Case[] = [
  { name: 'STRICT: eval', code: 'eval("1")', expect: fail('VALIDATION_ERROR', 'Forbidden construct: `eval` is not allowed (line 1, column 1)', 'ValidationError') },
  { name: 'STRICT: Function with position', code: 'const x = 1\nreturn Function("return 1")()', expect: fail('VALIDATION_ERROR', 'Forbidden construct: `Function` is not allowed (line 2, column 8)') },
  { name: 'STRICT: .constructor', code: 'return (() => {}).constructor', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: ["constructor"]', code: 'return [][\'constructor\']', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: template key constructor', code: 'return [][`constructor`]', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: destructured constructor', code: 'const { constructor } = []\nreturn constructor', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: __proto__ read', code: 'return ({}).__proto__', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: __proto__ literal key', code: 'return ({ __proto__: null })', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: with', code: 'with (Math) { return PI }', expect: fail('VALIDATION_ERROR', /^SyntaxError|^Forbidden construct: `with`/) },
  { name: 'STRICT: import()', code: 'return import("fs")', expect: fail('VALIDATION_ERROR', "Module 'fs' cannot be imported: scripts may import no modules here (line 1, column 8)") },
  { name: 'STRICT: import.meta', code: 'return import.meta', expect: fail('VALIDATION_ERROR', /^SyntaxError: .*\(line 1, column \d+\)$/) },
  { name: 'STRICT: WebAssembly', code: 'return new WebAssembly.Memory({ initial: 1 })', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: SharedArrayBuffer', code: 'return new SharedArrayBuffer(8)', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: Atomics', code: 'return Atomics.add', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: prepareStackTrace', code: 'Error.prepareStackTrace = () => 1', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: arguments.callee', code: 'return arguments.callee', expect: fail('VALIDATION_ERROR', AT) },
  { name: 'STRICT: syntax error with position', code: 'return (', expect: fail('VALIDATION_ERROR', 'SyntaxError: Unexpected token (line 1, column 9)') },
  { name: 'STRICT: unterminated string', code: 'const a = 1\nconst s = "abc', expect: fail('VALIDATION_ERROR', 'SyntaxError: Unterminated string constant (line 2, column 11)') },
  { name: 'STRICT: function body cannot be closed early', code: '}); globalThis.x = 1; (async function () {', expect: fail('VALIDATION_ERROR', /^SyntaxError/) },
  { name: 'STRICT: computed constructor meets the runtime wall', code: 'const k = "constr" + "uctor"\nreturn [][k][k]("return 1")()', expect: EVAL },
  { name: 'STRICT: class constructors are fine', code: 'class A { constructor () { this.x = 1 } }\nreturn new A().x', expect: ok(1) },
  { name: 'STRICT: property named eval is fine', code: 'const o = { eval: 2, Function: 3 }\nreturn o.eval + o.Function', expect: ok(5) },
  { name: 'STRICT: top-level await and return', code: 'const v = await callTool("echo", 4)\nreturn v * 2', expect: ok(8) }
].map((c) => ({ ...c, level: 'STRICT' as const }))

t.test('escapes at runtime (SECURE)', async (t) => { runCorpus(t, runtime) })
t.test('escapes refused by the AST check (STRICT)', async (t) => { runCorpus(t, strict) })
// The same escapes with every sandbox module imported first (on line 1, so positions hold): no
// module hands the script a way around the walls.
// Once the runner has a snapshot of them, those runs start with the modules evaluated in their
// context (services/enclave/runner/module-snapshots.ts): most cases run there.
t.test('escapes at runtime with every sandbox module loaded (SECURE)', async (t) => {
  const modules = loadModuleCatalog().names
  const imports = modules.map((name, i) => `import * as sandboxModule${i} from '${name}'; `).join('')
  const isolates: string[] = []
  const cases = runtime.filter((c) => c.expect.success || c.expect.code !== 'VALIDATION_ERROR')
  runCorpus(t, cases.map((c) => ({
    ...c,
    code: imports + c.code,
    options: { ...c.options, modules },
    check: (t, r, ctx, event) => { c.check?.(t, r, ctx, event); isolates.push(event?.isolateId ?? '') }
  })))
  t.test('most of them ran in contexts made from the modules snapshot', async (t) => {
    const snapshotted = isolates.filter((id) => id.includes('@')).length
    t.ok(snapshotted >= isolates.length / 2, `${snapshotted} of ${isolates.length}`)
  })
})
t.test('non-STRICT code that cannot close its function early', async (t) => {
  runCorpus(t, [
    { name: 'SECURE: closing the body is a syntax error', code: '}); globalThis.x = 1; (async function () {', expect: fail('VALIDATION_ERROR', /^SyntaxError: .*\(line 1, column 1\)$/) },
    { name: 'SECURE: syntax error reports line and column', code: 'const a = 1\nreturn a +* 2', expect: fail('VALIDATION_ERROR', 'SyntaxError: Unexpected token (line 2, column 11)') }
  ])
})
