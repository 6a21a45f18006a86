// What V8 13.6 (Node 24) added since V8 11.3 (Node 20), as tenant code sees it: each new global or
// syntax works as the language says, and none of them reaches the host or generates code. Run at
// STRICT too, so the AST check accepts the new syntax (`using`, RegExp modifiers, `new.target`)
// exactly where the isolate does, and still refuses the old escapes written with the new features.
import t from 'tap'
import { type Case, fail, ok, runCorpus } from './fixtures/helpers.ts'

const features: Case[] = [
  { name: '`using` disposes at the end of its block', code: 'const out = []\n{\n  using r = { [Symbol.dispose] () { out.push("disposed") } }\n  out.push("body")\n}\nreturn out', expect: ok(['body', 'disposed']) },
  { name: '`using` at the top level of the script', code: 'const out = []\nusing r = { [Symbol.dispose] () { out.push(1) } }\nreturn out.length', expect: ok(0) },
  { name: '`await using` awaits an async disposer', code: 'const out = []\n{\n  await using r = { async [Symbol.asyncDispose] () { out.push("async") } }\n}\nreturn out', expect: ok(['async']) },
  { name: 'DisposableStack runs deferred callbacks in reverse', code: 'const out = []\nconst s = new DisposableStack()\ns.defer(() => out.push(1))\ns.defer(() => out.push(2))\ns.dispose()\nreturn [out, s.disposed]', expect: ok([[2, 1], true]) },
  { name: 'AsyncDisposableStack', code: 'const out = []\nconst s = new AsyncDisposableStack()\ns.defer(async () => out.push("a"))\nawait s.disposeAsync()\nreturn out', expect: ok(['a']) },
  { name: 'SuppressedError from a throwing disposer', code: 'try {\n  using a = { [Symbol.dispose] () { throw new Error("in dispose") } }\n  throw new Error("in body")\n} catch (e) {\n  return [e.name, e.error.message, e.suppressed.message]\n}', expect: ok(['SuppressedError', 'in dispose', 'in body']) },
  { name: 'Iterator helpers', code: 'return Iterator.from([1, 2, 3, 4, 5]).filter((x) => x % 2).map((x) => x * 10).take(2).toArray()', expect: ok([10, 30]) },
  { name: 'Iterator helpers on a generator', code: 'function * g () { let i = 0; while (true) yield i++ }\nreturn g().drop(3).take(3).reduce((a, b) => a + b, 0)', expect: ok(12) },
  { name: 'Float16Array and Math.f16round', code: 'return [Math.f16round(1.337), Array.from(new Float16Array([1.5, 70000]))]', expect: ok([1.3369140625, [1.5, null]]) },
  { name: 'Promise.try and Promise.withResolvers', code: 'const { promise, resolve } = Promise.withResolvers()\nresolve(2)\nreturn [await Promise.try(() => 40), await promise]', expect: ok([40, 2]) },
  { name: 'Object.groupBy and Map.groupBy', code: 'const g = Object.groupBy([1, 2, 3], (x) => x % 2 ? "odd" : "even")\nreturn [g, [...Map.groupBy([1, 2, 3], (x) => x > 1).keys()]]', expect: ok([{ odd: [1, 3], even: [2] }, [false, true]]) },
  { name: 'Array.fromAsync', code: 'async function * g () { yield 1; yield 2 }\nreturn await Array.fromAsync(g())', expect: ok([1, 2]) },
  { name: 'Set methods', code: 'const a = new Set([1, 2, 3])\nconst b = new Set([2, 3, 4])\nreturn [[...a.union(b)], [...a.intersection(b)], [...a.difference(b)], a.isSubsetOf(b)]', expect: ok([[1, 2, 3, 4], [2, 3], [1], false]) },
  { name: 'RegExp v flag, modifiers and RegExp.escape', code: 'return [/[\\p{L}--[a-z]]/v.test("A"), /(?i:a)b/.test("Ab"), /(?i:a)b/.test("AB"), RegExp.escape("a.b")]', expect: ok([true, true, false, '\\x61\\.b']) },
  { name: 'Error.isError', code: 'return [Error.isError(new TypeError("x")), Error.isError({ name: "Error", message: "x" })]', expect: ok([true, false]) },
  { name: 'JSON.rawJSON', code: 'return JSON.stringify({ n: JSON.rawJSON("12345678901234567890") })', expect: ok('{"n":12345678901234567890}') },
  { name: 'ArrayBuffer.prototype.transfer detaches the source', code: 'const a = new ArrayBuffer(8)\nconst b = a.transfer(16)\nreturn [a.detached, a.byteLength, b.byteLength]', expect: ok([true, 0, 16]) },
  { name: 'new.target at the top level is undefined', code: 'return typeof new.target', expect: ok('undefined') }
]

// The new globals' prototypes lead to no Function constructor, and nothing new is a host object.
const walls: Case[] = [
  { name: 'Iterator helpers do not reach Function', code: 'const C = Object.getPrototypeOf(Iterator.from([1]).map((x) => x))\nconst f = Reflect.get(Object.getPrototypeOf(function * () {}), "con" + "structor")\ntry { return f("return 1")() } catch (e) { return [typeof C, e.name] }', expect: ok(['object', 'EvalError']) },
  { name: 'DisposableStack.prototype.constructor is DisposableStack', code: 'const k = "con" + "structor"\nreturn DisposableStack.prototype[k] === DisposableStack', expect: ok(true) },
  { name: 'a disposer cannot outlive the run with a timer', code: 'using r = { [Symbol.dispose] () { globalThis.setTimeout?.(() => {}, 0) } }\nreturn typeof setTimeout', expect: ok('undefined') },
  { name: 'SuppressedError carries no stack of the host', code: 'try { using a = { [Symbol.dispose] () { throw new Error("d") } }\n throw new Error("b") } catch (e) { return /node:|\\/srv|internal\\//.test(String(e.stack)) }', expect: ok(false) },
  { name: 'shared memory stays out: Atomics.pause is unreachable', code: 'return typeof Atomics', expect: ok('undefined') }
]

const strictOnly: Case[] = [
  { name: 'STRICT: `using` parses as in a function body', code: 'using r = null\nreturn 1', expect: ok(1) },
  { name: 'STRICT: an early `})` that would close the wrapper is a syntax error', code: '}); (async function () {', expect: fail('VALIDATION_ERROR', "SyntaxError: Unexpected token '}' (line 1, column 1)") },
  { name: 'STRICT: `constructor` through an Iterator helper is refused', code: 'return Iterator.from([]).constructor', expect: fail('VALIDATION_ERROR', 'Forbidden construct: access to `constructor` is not allowed (line 1, column 8)') },
  { name: 'STRICT: Atomics named in new syntax is refused', code: 'using x = { [Symbol.dispose] () { Atomics.pause() } }', expect: fail('VALIDATION_ERROR', 'Forbidden construct: `Atomics` is not allowed (line 1, column 35)') },
  { name: 'STRICT: a syntax error on a later line keeps its own position', code: 'const a = 1\nconst b = 2\nusing = = 3', expect: fail('VALIDATION_ERROR', /^SyntaxError: .*\(line 3, column \d+\)$/) }
]

t.test('V8 13.6 features at SECURE', async (t) => { runCorpus(t, [...features, ...walls]) })
// STRICT refuses the name `Atomics` before running, so that one wall is checked there separately.
t.test('the same at STRICT', async (t) => { runCorpus(t, [...features, ...walls.filter((c) => !c.code.includes('Atomics'))], 'STRICT') })
t.test('STRICT only', async (t) => { runCorpus(t, strictOnly, 'STRICT') })
