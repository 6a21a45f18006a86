// Security corpus: host references through results; thenables, getters, toJSON and Proxies
// returned to the host; timing and global reconnaissance. Each case asserts its exact outcome.
import t from 'tap'
import { type Case, fail, ok, runCorpus } from './fixtures/helpers.ts'

// Exactly the globals a script sees: the standard built-ins, console and callTool.
const GLOBALS = [
  'AggregateError', 'Array', 'ArrayBuffer', 'AsyncDisposableStack', 'BigInt', 'BigInt64Array', 'BigUint64Array',
  'Boolean', 'DataView', 'Date', 'DisposableStack', 'Error', 'EvalError', 'Float16Array', 'Float32Array',
  'Float64Array', 'Function', 'Infinity', 'Int16Array', 'Int32Array', 'Int8Array', 'Intl', 'Iterator', 'JSON',
  'Map', 'Math', 'NaN', 'Number', 'Object', 'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'Reflect',
  'RegExp', 'Set', 'String', 'SuppressedError', 'Symbol', 'SyntaxError', 'TypeError',
  'URIError', 'Uint16Array', 'Uint32Array', 'Uint8Array', 'Uint8ClampedArray', 'WeakMap', 'WeakRef', 'WeakSet',
  'callTool', 'console', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'eval',
  'globalThis', 'isFinite', 'isNaN', 'parseFloat', 'parseInt', 'undefined', 'unescape'
]
const HOST_NAMES = [
  'require', 'process', 'Buffer', 'global', 'module', 'exports', '__dirname', '__filename', 'ivm', '_ivm',
  'IsolatedVM', '$0', '$1', '$2', '$3', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask',
  'structuredClone', 'fetch', 'XMLHttpRequest', 'WebSocket', 'performance', 'navigator', 'send', 'alarm',
  'init', 'deliver', 'WebAssembly', 'SharedArrayBuffer', 'Atomics'
]
const NOT_SERIALISABLE = /^Return value is not JSON-serialisable/

const leaks: Case[] = [
  { name: 'globalThis serialises to {} (nothing enumerable)', code: 'return globalThis', expect: ok({}) },
  { name: 'callTool is not serialisable', code: 'return callTool', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable (function)', 'TypeError') },
  { name: 'console serialises to {}', code: 'return console', expect: ok({}) },
  { name: 'functions inside arrays become null', code: 'return [callTool, console.log, () => 1]', expect: ok([null, null, null]) },
  { name: 'functions inside objects are dropped', code: 'return { f: callTool, g: console.log, x: 1 }', expect: ok({ x: 1 }) },
  { name: 'symbol is not serialisable', code: 'return Symbol("s")', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable (symbol)') },
  { name: 'BigInt is not serialisable', code: 'return 10n', expect: fail('EXECUTION_ERROR', NOT_SERIALISABLE, 'TypeError') },
  { name: 'cyclic value is not serialisable', code: 'const o = {}\no.o = o\nreturn o', expect: fail('EXECUTION_ERROR', /^Return value is not JSON-serialisable: Converting circular structure/) },
  { name: 'Map serialises to {}', code: 'return new Map([[1, 2]])', expect: ok({}) },
  { name: 'Date serialises to ISO text', code: 'return new Date(0)', expect: ok('1970-01-01T00:00:00.000Z') },
  { name: 'undefined return has no value key', code: 'return undefined', expect: { success: true, noValue: true } },
  { name: 'no return has no value key', code: 'const x = 1', expect: { success: true, noValue: true } },
  { name: 'NaN becomes null', code: 'return NaN', expect: ok(null) },
  { name: 'Error serialises to {}', code: 'return new Error("x")', expect: ok({}) },
  { name: 'returned promise is awaited', code: 'return Promise.resolve(5)', expect: ok(5) },
  { name: 'typed array serialises as an object of indices', code: 'return new Uint8Array([1, 2])', expect: ok({ 0: 1, 1: 2 }) },
  { name: 'exact set of globals', code: 'return Object.getOwnPropertyNames(globalThis).sort()', expect: ok([...GLOBALS].sort()) },
  { name: 'no host names anywhere on the global chain', code: `const names = ${JSON.stringify(HOST_NAMES)}\nconst found = []\nfor (let o = globalThis; o; o = Object.getPrototypeOf(o)) for (const n of names) if (Object.prototype.hasOwnProperty.call(o, n)) found.push(n)\nreturn found`, expect: ok([]) },
  { name: 'typeof host names', code: `return ${JSON.stringify(HOST_NAMES)}.map((n) => { try { return typeof globalThis[n] } catch (e) { return 'threw' } })`, expect: ok(HOST_NAMES.map(() => 'undefined')) },
  { name: 'global symbols show nothing of the host', code: 'return Object.getOwnPropertySymbols(globalThis).map(String)', expect: ok([]) },
  { name: 'callTool shows no source', code: 'return [callTool.toString(), console.log.toString(), Object.getOwnPropertyNames(callTool).sort()]', expect: ok(['function () { [native code] }', 'function () { [native code] }', ['length', 'name']]) },
  { name: 'callTool has no prototype to walk', code: 'return [callTool.prototype === undefined, Object.getPrototypeOf(callTool) === Function.prototype]', expect: ok([true, true]) },
  {
    name: 'error stacks carry no host paths',
    code: 'let tool\ntry { await callTool("fail") } catch (e) { tool = e }\nreturn [new Error("x").stack, tool.stack, tool.message]',
    expect: { success: true },
    check: (t, r) => {
      const text = JSON.stringify(r.value)
      t.notMatch(text, /\/srv|\/work|node_modules|file:|\.ts\b|isolated-vm/, 'no host path in stacks or messages')
      t.match(text, /boom in <path>/)
    }
  },
  { name: 'this at top level is the sandbox global', code: 'return this === globalThis', expect: ok(true) },
  { name: 'Date works, performance does not exist', code: 'return [typeof Date.now(), typeof performance]', expect: ok(['number', 'undefined']) },
  // (It returned `Date.now() - t0 >= 0`, which holds for any clock.)
  { name: 'the only clock is Date, in whole milliseconds', code: 'const t0 = Date.now()\nlet x = 0\nfor (let i = 0; i < 1e6; i++) x += i\nreturn [typeof performance, typeof process, Number.isInteger(t0), Date.now() >= t0]', expect: ok(['undefined', 'undefined', true, true]) },
  { name: 'Intl works', code: 'return new Intl.NumberFormat("en-US").format(1234.5)', expect: ok('1,234.5') }
]

const hostile: Case[] = [
  { name: 'thenable resolves', code: 'return { then (r) { r(42) } }', expect: ok(42) },
  { name: 'thenable that never resolves times out', code: 'return { then () {} }', options: { timeoutMs: 300 }, expect: fail('TIMEOUT', 'Execution timed out after 300 ms', 'TimeoutError') },
  { name: 'thenable that throws', code: 'return { then () { throw new Error("t") } }', expect: fail('EXECUTION_ERROR', 't', 'Error') },
  { name: 'getter is read inside the isolate', code: 'return { get x () { return 1 } }', expect: ok({ x: 1 }) },
  { name: 'throwing getter', code: 'return { get x () { throw new Error("g") } }', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable: g') },
  { name: 'toJSON is honoured inside the isolate', code: 'return { toJSON () { return "j" } }', expect: ok('j') },
  { name: 'toJSON that loops times out', code: 'return { toJSON () { while (true) {} } }', options: { timeoutMs: 300 }, expect: fail('TIMEOUT') },
  { name: 'toJSON returning a function', code: 'return { toJSON () { return callTool } }', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable (object)') },
  { name: 'toJSON calling callTool', code: 'return { toJSON () { callTool("echo", 1); return 1 } }', expect: ok(1) },
  {
    name: 'Proxy with traps serialises through its traps',
    code: 'return new Proxy({}, { get: () => "p", ownKeys: () => ["a"], getOwnPropertyDescriptor: () => ({ value: "p", enumerable: true, configurable: true }) })',
    expect: ok({ a: 'p' })
  },
  { name: 'Proxy whose trap throws', code: 'return new Proxy({}, { ownKeys () { throw new Error("px") } })', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable: px') },
  { name: 'revoked Proxy', code: 'const { proxy, revoke } = Proxy.revocable({}, {})\nrevoke()\nreturn proxy', expect: fail('EXECUTION_ERROR', "Cannot perform 'get' on a proxy that has been revoked", 'TypeError') },
  { name: 'Proxy thrown as an error', code: 'throw new Proxy({}, { get () { throw new Error("trap") } })', expect: fail('EXECUTION_ERROR', 'Uncaught exception that could not be described', 'Error') },
  { name: 'getter-laden thrown error', code: 'throw { get name () { return "Custom" }, get message () { return "m" } }', expect: fail('EXECUTION_ERROR', 'm', 'Custom') },
  { name: 'thrown primitive', code: 'throw "plain"', expect: fail('EXECUTION_ERROR', 'plain', 'Error') },
  { name: 'thenable tool arguments are plain data', code: 'return await callTool("echo", { then: 1 })', expect: ok({ then: 1 }) },
  {
    name: 'Object.prototype.then hijacks only the script itself',
    code: 'Object.defineProperty(Object.prototype, "then", { get () { return (r) => r("hijack") }, configurable: true })\nreturn await callTool("echo", { a: 1 })',
    expect: ok('hijack')
  },
  { name: 'array with throwing index getter', code: 'const a = [1]\nObject.defineProperty(a, 0, { get () { throw new Error("idx") } })\nreturn a', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable: idx') },
  { name: 'value replaced by Symbol.toPrimitive is irrelevant to JSON', code: 'return { [Symbol.toPrimitive] () { return 1 }, v: 2 }', expect: ok({ v: 2 }) }
]

t.test('host references through results, and reconnaissance', async (t) => { runCorpus(t, leaks) })
t.test('thenables, getters, toJSON and Proxies returned to the host', async (t) => { runCorpus(t, hostile) })
t.test('the same under STRICT', async (t) => {
  runCorpus(t, [
    { name: 'STRICT: exact set of globals', code: 'return Object.getOwnPropertyNames(globalThis).sort()', expect: ok([...GLOBALS].sort()) },
    { name: 'STRICT: thenable resolves', code: 'return { then (r) { r(1) } }', expect: ok(1) },
    { name: 'STRICT: returning callTool', code: 'return callTool', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable (function)') }
  ], 'STRICT')
})
