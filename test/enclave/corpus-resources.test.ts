// Security corpus: infinite loops, microtask loops, never-settling awaits, deep recursion,
// memory bombs, output and log floods, ReDoS. Each case asserts its exact outcome.
import t from 'tap'
import { Enclave } from '../../services/enclave/index.ts'
import { type Case, fail, ok, runCorpus } from './fixtures/helpers.ts'

const T = { timeoutMs: 300 }
const TIMEOUT = fail('TIMEOUT', 'Execution timed out after 300 ms', 'TimeoutError')
const MEM = { memoryLimitMB: 16, timeoutMs: 10_000 }
const MEMORY = fail('MEMORY_LIMIT_EXCEEDED', /^(Memory limit of 16 MB exceeded|Array buffer allocation failed: memory limit of 16 MB)/, 'MemoryLimitError')
const STACK = fail('EXECUTION_ERROR', 'Maximum call stack size exceeded', 'RangeError')
// After a run that spoilt its isolate, the next run of that key gets a new one.
const fresh: Case['check'] = (t, _r, _ctx, event) => { t.equal(event?.reusedIsolate, false, 'in a fresh isolate') }

const loops: Case[] = [
  { name: 'while (true)', code: 'while (true) {}', options: T, expect: TIMEOUT },
  { name: 'for (;;)', code: 'for (;;) {}', options: T, expect: TIMEOUT },
  { name: 'do while', code: 'do {} while (1)', options: T, expect: TIMEOUT },
  { name: 'loop after an await', code: 'await callTool("echo", 1)\nwhile (true) {}', options: T, expect: TIMEOUT },
  { name: 'termination cannot be caught', code: 'try { while (true) {} } catch (e) { return "caught" }', options: T, expect: TIMEOUT },
  { name: 'loop in finally', code: 'try { while (true) {} } finally { while (true) {} }', options: T, expect: TIMEOUT },
  { name: 'loop inside a console argument', code: 'console.log({ toJSON () { for (;;) {} } })', options: T, expect: TIMEOUT },
  { name: 'loop inside tool argument serialisation', code: 'await callTool("echo", { toJSON () { for (;;) {} } })', options: T, expect: TIMEOUT },
  { name: 'microtask loop', code: 'for (;;) await null', options: T, expect: TIMEOUT },
  { name: 'promise chain loop', code: 'const f = () => Promise.resolve().then(f)\nf()\nawait new Promise(() => {})', options: T, expect: TIMEOUT },
  // The value stands; the work left behind dies with the isolate, which is never reused: the
  // same key then serves again, from a fresh isolate.
  { name: 'background microtask loop after return', key: 'left-behind', code: '(async () => { for (;;) await null })()\nreturn 1', options: T, expect: ok(1) },
  { name: 'background promise chain after return', key: 'left-behind', code: 'Promise.resolve().then(function f () { return Promise.resolve().then(f) })\nreturn 2', options: T, expect: ok(2), check: fresh },
  { name: 'the key serves again after left-behind work', key: 'left-behind', code: 'return 3', options: T, expect: ok(3), check: fresh },
  { name: 'never-settling promise', code: 'await new Promise(() => {})', options: T, expect: TIMEOUT },
  { name: 'never-settling thenable', code: 'await { then () {} }', options: T, expect: TIMEOUT },
  { name: 'empty Promise.race', code: 'await Promise.race([])', options: T, expect: TIMEOUT },
  {
    name: 'pending tool call past the timeout',
    code: 'await callTool("hang")',
    options: T,
    expect: TIMEOUT,
    check: (t, r, ctx) => { t.equal(ctx.calls.length, 1); t.equal(r.stats.toolCallCount, 1) }
  },
  { name: 'pending tool call inside Promise.all', code: 'await Promise.all([callTool("hang"), callTool("echo", 1)])', options: T, expect: TIMEOUT },
  { name: 'un-awaited pending tool call does not block the result', code: '(async () => { await callTool("hang") })()\nreturn 3', expect: ok(3) },
  { name: 'ReDoS (nested quantifier)', code: 'return /^(a+)+$/.test("a".repeat(32) + "b")', options: T, expect: TIMEOUT },
  { name: 'ReDoS (overlapping alternation)', code: 'return /(x+x+)+y/.test("x".repeat(40))', options: T, expect: TIMEOUT },
  { name: 'ReDoS inside a tool result', code: 'const s = await callTool("echo", "a".repeat(32) + "!")\nreturn /^(\\w+\\s?)*$/.test(s)', options: T, expect: TIMEOUT },
  { name: 'slow but finite work finishes', code: 'let x = 0\nfor (let i = 0; i < 1e6; i++) x += i\nreturn x', options: T, expect: ok(499999500000) }
]

const recursion: Case[] = [
  { name: 'unbounded recursion', code: 'function f () { return f() + 1 }\nreturn f()', expect: STACK },
  { name: 'caught stack overflow', code: 'function f () { f() }\ntry { f() } catch (e) { return e instanceof RangeError }', expect: ok(true) },
  { name: 'deeply nested return value', code: 'let o = []\nfor (let i = 0; i < 1e5; i++) o = [o]\nreturn o', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable: Maximum call stack size exceeded') },
  { name: 'deeply nested tool args', code: 'let o = {}\nfor (let i = 0; i < 1e5; i++) o = { o }\ntry { await callTool("echo", o) } catch (e) { return [e.code, e.message] }', expect: ok(['TOOL_ERROR', 'Tool arguments are not JSON-serialisable: Maximum call stack size exceeded']) },
  { name: 'deep async recursion', code: 'async function f (n) { return n === 0 ? 0 : 1 + await f(n - 1) }\nreturn await f(1e5)', expect: STACK },
  { name: 'recursion through toJSON', code: 'const o = { toJSON () { return [o] } }\nreturn o', expect: fail('EXECUTION_ERROR', 'Return value is not JSON-serialisable: Maximum call stack size exceeded') },
  { name: 'recursion through a getter', code: 'const o = { get x () { return o.x } }\nreturn o.x', expect: STACK }
]

const memory: Case[] = [
  { name: 'array of objects', code: 'const a = []\nfor (;;) a.push({ i: a.length })', options: MEM, expect: MEMORY },
  { name: 'array bomb cannot be caught', code: 'try { const a = []\nfor (;;) a.push(new Array(1e5)) } catch (e) { return "caught" }', options: MEM, expect: MEMORY },
  { name: 'string doubling (flattened)', code: 'let s = "xxxxxxxxxxxxxxxx"\nfor (;;) { s += s; s.indexOf("y") }', options: MEM, expect: MEMORY },
  { name: 'string doubling past the maximum length', code: 'let s = "x"\nfor (let i = 0; i < 40; i++) s += s\nreturn s.length', options: MEM, expect: fail('EXECUTION_ERROR', 'Invalid string length', 'RangeError') },
  { name: 'one huge typed array', code: 'return new Uint8Array(1e9).length', options: MEM, expect: fail('MEMORY_LIMIT_EXCEEDED', 'Array buffer allocation failed: memory limit of 16 MB') },
  { name: 'many typed arrays', code: 'const a = []\nfor (;;) a.push(new Float64Array(1e5))', options: MEM, expect: MEMORY },

  { name: 'Map growth', code: 'const m = new Map()\nfor (let i = 0; ; i++) m.set(i, "v" + i)', options: MEM, expect: fail('MEMORY_LIMIT_EXCEEDED', /^Memory limit of 16 MB exceeded/) },
  { name: 'huge array fill', code: 'return new Array(2 ** 26).fill(0).length', options: MEM, expect: fail('MEMORY_LIMIT_EXCEEDED', /^Memory limit of 16 MB exceeded/) },
  { name: 'memory bomb inside a tool result handler', key: 'bombed', code: 'const s = await callTool("echo", "x")\nconst a = []\nfor (;;) a.push(s + a.length)', options: MEM, expect: MEMORY },
  { name: 'the same key serves again after a memory bomb', key: 'bombed', code: 'return 1 + 1', options: MEM, expect: ok(2), check: fresh }
]

const output: Case[] = [
  { name: 'log flood', code: 'for (;;) console.log("x".repeat(1000))', expect: fail('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded 262144 bytes', 'OutputLimitError') },
  { name: 'log flood is uncatchable', code: 'try { for (;;) console.log("x".repeat(1000)) } catch (e) {}\nreturn "survived"', expect: fail('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded 262144 bytes') },
  { name: 'log flood caught inside a loop that never yields', code: 'for (;;) { try { console.log("x".repeat(1000)) } catch (e) {} }', options: { timeoutMs: 2000 }, expect: fail('OUTPUT_LIMIT_EXCEEDED') },
  { name: 'flood of empty messages', code: 'for (let i = 0; i < 1e6; i++) console.log()', expect: fail('OUTPUT_LIMIT_EXCEEDED') },
  { name: 'one giant message', code: 'console.log("y".repeat(300000))', expect: fail('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded 262144 bytes') },
  { name: 'multi-byte log flood is counted in UTF-8', code: 'for (let i = 0; i < 400; i++) console.log("€".repeat(100))\nreturn 1', options: { maxConsoleBytes: 100_000 }, expect: fail('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded 100000 bytes') },
  { name: 'logs within the limit are kept', code: 'for (let i = 0; i < 3; i++) console.log("line", i)\nreturn 1', expect: ok(1), check: (t, r) => t.same(r.logs.map((l) => l.message), ['line 0', 'line 1', 'line 2']) },
  { name: 'huge return value', code: 'return "x".repeat(2e6)', expect: fail('OUTPUT_LIMIT_EXCEEDED', /over the limit of 1048576 bytes$/) },
  { name: 'return value within a small limit', code: 'return "x".repeat(1000)', options: { maxOutputBytes: 2000 }, expect: ok('x'.repeat(1000)) },
  { name: 'value plus logs over the limit', code: 'console.log("y".repeat(1500))\nreturn "x".repeat(1500)', options: { maxOutputBytes: 3000 }, expect: fail('OUTPUT_LIMIT_EXCEEDED', /^Output is \d+ bytes, over the limit of 3000 bytes$/) },
  { name: 'two-byte characters counted as UTF-8 (fits)', code: 'return "é".repeat(1400)', options: { maxOutputBytes: 3000 }, expect: ok('é'.repeat(1400)) },
  { name: 'three-byte characters counted as UTF-8 (over)', code: 'return "€".repeat(1400)', options: { maxOutputBytes: 3000 }, expect: fail('OUTPUT_LIMIT_EXCEEDED', 'Output is 4202 bytes, over the limit of 3000 bytes') },
  { name: 'tool results flood into logs', code: 'for (let i = 0; i < 40; i++) console.log(await callTool("big", 20000))', options: { maxToolCalls: 100 }, expect: fail('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded 262144 bytes') }
]

t.test('loops, microtasks, never-settling awaits, ReDoS', async (t) => { runCorpus(t, loops) })
t.test('deep recursion', async (t) => { runCorpus(t, recursion) })
t.test('memory bombs', async (t) => { runCorpus(t, memory) })
t.test('output and log floods', async (t) => { runCorpus(t, output) })
t.test('log flood under STRICT (64 KB console)', async (t) => {
  runCorpus(t, [
    { name: 'STRICT: log flood', code: 'for (;;) console.log("x".repeat(1000))', expect: fail('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded 65536 bytes') },
    { name: 'STRICT: loop', code: 'while (true) {}', options: T, expect: TIMEOUT }
  ], 'STRICT')
})

// isolated-vm's limit is soft: its allocator may let a run hold a little more than the limit. A run
// that ends holding more than its limit fails, so no result ever shows more memory than allowed.
t.test('a typed array bomb that catches its allocation failures never reports more than its limit', async (t) => {
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 1 })
  t.teardown(async () => await enclave.dispose())
  const r = await enclave.run('const a = []\nfor (let i = 0; i < 40; i++) { try { a.push(new Uint8Array(1e6)) } catch (e) {} }\nreturn a.length', MEM)
  if (r.success) {
    t.ok((r.value as number) < 40, 'some allocations were refused')
    t.ok(r.stats.memoryUsage! <= 16 * 1024 * 1024, `memoryUsage ${r.stats.memoryUsage} is within the limit`)
  } else {
    t.equal(r.error?.code, 'MEMORY_LIMIT_EXCEEDED')
    t.match(r.error?.message, /^Memory limit of 16 MB exceeded \(\d+ MB in use at the end\)$/)
  }
})
