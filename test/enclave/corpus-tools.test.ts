// Security corpus: tool-call floods and catching limit errors, the handler error contract,
// oversized and cyclic tool args, Unicode tricks in tool names. Each case asserts its exact outcome.
import t, { type Test } from 'tap'
import { type Case, type Ctx, fail, ok, runCorpus } from './fixtures/helpers.ts'

// How the sandbox refuses a name that cannot be a tool's.
const NAME_RULE = ' (tool names are 1 to 128 ASCII letters, digits and _ . : -)'

const LIMIT10 = 'Tool call limit exceeded: at most 10 calls per execution'
const calls = (n: number) => (t: Test, _r: unknown, ctx: Ctx): void => { t.equal(ctx.calls.length, n, `handler called ${n} times`) }

const floods: Case[] = [
  { name: '10 calls are allowed', code: 'let n = 0\nfor (let i = 0; i < 10; i++) n += await callTool("echo", 1)\nreturn n', expect: ok(10), check: (t, r, ctx) => { t.equal(ctx.calls.length, 10); t.equal(r.stats.toolCallCount, 10) } },
  { name: 'the 11th call ends the run', code: 'for (let i = 0; i < 11; i++) await callTool("echo", i)\nreturn "done"', expect: fail('MAX_TOOL_CALLS', LIMIT10, 'ToolCallLimitError'), check: calls(10) },
  { name: 'catching the 11th call does not help', code: 'for (let i = 0; i < 11; i++) { try { await callTool("echo", i) } catch (e) {} }\nreturn "survived"', expect: fail('MAX_TOOL_CALLS', LIMIT10), check: calls(10) },
  { name: 'catching and looping forever does not help', code: 'for (;;) { try { callTool("echo", 1) } catch (e) {} }', options: { timeoutMs: 2000 }, expect: fail('MAX_TOOL_CALLS', LIMIT10) },
  { name: 'Promise.all flood', code: 'await Promise.all(Array.from({ length: 100 }, (_, i) => callTool("echo", i)))', expect: fail('MAX_TOOL_CALLS', LIMIT10), check: (t, _r, ctx) => t.ok(ctx.calls.length <= 10) },
  { name: 'un-awaited flood', code: 'for (let i = 0; i < 50; i++) callTool("echo", i).catch(() => {})\nreturn "done"', expect: fail('MAX_TOOL_CALLS', LIMIT10), check: (t, _r, ctx) => t.ok(ctx.calls.length <= 10) },
  { name: 'limit from the run options', code: 'await callTool("echo", 1)\nawait callTool("echo", 2)\nawait callTool("echo", 3)', options: { maxToolCalls: 2 }, expect: fail('MAX_TOOL_CALLS', 'Tool call limit exceeded: at most 2 calls per execution'), check: calls(2) },
  { name: 'maxToolCalls 0 refuses the first call', code: 'try { await callTool("echo", 1) } catch (e) {}\nreturn 1', options: { maxToolCalls: 0 }, expect: fail('MAX_TOOL_CALLS'), check: calls(0) },
  { name: 'refused names still count as calls', code: 'for (let i = 0; i < 11; i++) { try { await callTool("bad name") } catch (e) {} }', expect: fail('MAX_TOOL_CALLS'), check: calls(0) },
  { name: 'daily quota from the handler is fatal', code: 'try { await callTool("quota") } catch (e) { return "caught" }', expect: fail('TOOL_QUOTA_EXCEEDED', 'Daily tool call quota exceeded', 'ToolQuotaError') },
  { name: 'daily quota inside a loop that keeps going', code: 'for (let i = 0; i < 5; i++) { try { await callTool("quota") } catch (e) {} }\nwhile (true) { await null }', options: { timeoutMs: 3000 }, expect: fail('TOOL_QUOTA_EXCEEDED'), check: calls(1) },
  { name: 'fatal host failure', code: 'try { await callTool("dbdown") } catch (e) { return "caught" }', expect: fail('INTERNAL_ERROR', 'database unavailable', 'InternalError') }
]

const contract: Case[] = [
  { name: 'PERMISSION_DENIED is catchable', code: 'try { await callTool("deny") } catch (e) { return [e.name, e.code, e.message, e instanceof Error] }', expect: ok(['ToolError', 'PERMISSION_DENIED', 'Permission denied: tool:deny', true]) },
  { name: 'uncaught PERMISSION_DENIED becomes the result', code: 'await callTool("deny")', expect: fail('PERMISSION_DENIED', 'Permission denied: tool:deny', 'ToolError') },
  { name: 'TOOL_DISABLED is catchable', code: 'try { await callTool("disabled") } catch (e) { return e.code }', expect: ok('TOOL_DISABLED') },
  { name: 'TOOL_RATE_LIMITED is catchable', code: 'try { await callTool("rate") } catch (e) { return e.code }', expect: ok('TOOL_RATE_LIMITED') },
  { name: 'TOOL_NOT_FOUND from the handler', code: 'await callTool("nosuchtool")', expect: fail('TOOL_NOT_FOUND', 'Tool not found: nosuchtool', 'ToolError') },
  { name: 'plain Error becomes TOOL_ERROR without host paths', code: 'try { await callTool("fail") } catch (e) { return [e.code, e.message] }', expect: ok(['TOOL_ERROR', 'boom in <path>:10 (<path>)']) },
  { name: 'thrown string becomes TOOL_ERROR', code: 'await callTool("throwstring")', expect: fail('TOOL_ERROR', 'nope', 'ToolError') },
  { name: 'cyclic handler result becomes TOOL_ERROR', code: 'try { await callTool("cyclic") } catch (e) { return [e.code, e.message.startsWith("Tool result is not JSON-serialisable")] }', expect: ok(['TOOL_ERROR', true]) },
  { name: 'undefined handler result', code: 'return (await callTool("void")) === undefined', expect: ok(true) },
  { name: 'Date handler result arrives as text', code: 'return await callTool("date")', expect: ok('1970-01-01T00:00:00.000Z') },
  { name: 'tool errors carry no host stack', code: 'try { await callTool("deny") } catch (e) { return e.stack }', expect: ok('ToolError: Permission denied: tool:deny') },
  { name: 'a thrown code cannot spoof an enclave outcome', code: 'throw { name: "TimeoutError", code: "TIMEOUT", message: "fake" }', expect: fail('EXECUTION_ERROR', 'fake', 'TimeoutError') },
  { name: 'an Error with a tool code stays EXECUTION_ERROR', code: 'throw Object.assign(new Error("x"), { code: "PERMISSION_DENIED" })', expect: fail('EXECUTION_ERROR', 'x') },
  { name: 'rewriting a tool error does not change its code', code: 'try { await callTool("deny") } catch (e) { e.code = "TIMEOUT"; e.message = "changed"; throw e }', expect: fail('PERMISSION_DENIED', 'Permission denied: tool:deny') },
  { name: 'tool calls in parallel', code: 'return await Promise.all([1, 2, 3].map((i) => callTool("slow", i)))', expect: ok([1, 2, 3]) },
  { name: 'the handler gets the run context', code: 'return await callTool("whoami")', expect: { success: true }, check: (t, r, ctx) => t.equal(r.value, ctx.tenant) }
]

const args: Case[] = [
  { name: 'cyclic args', code: 'const o = {}\no.o = o\ntry { await callTool("echo", o) } catch (e) { return [e.code, e.message.startsWith("Tool arguments are not JSON-serialisable: Converting circular structure")] }', expect: ok(['TOOL_ERROR', true]), check: calls(0) },
  { name: 'BigInt args', code: 'try { await callTool("echo", { n: 1n }) } catch (e) { return [e.code, e.message] }', expect: ok(['TOOL_ERROR', 'Tool arguments are not JSON-serialisable: Do not know how to serialize a BigInt']), check: calls(0) },
  { name: 'function args', code: 'try { await callTool("echo", () => 1) } catch (e) { return [e.code, e.message] }', expect: ok(['TOOL_ERROR', 'Tool arguments are not JSON-serialisable']), check: calls(0) },
  { name: 'symbol args', code: 'try { await callTool("echo", Symbol("s")) } catch (e) { return e.code }', expect: ok('TOOL_ERROR'), check: calls(0) },
  { name: 'getter that throws in args', code: 'try { await callTool("echo", { get x () { throw new Error("g") } }) } catch (e) { return e.message }', expect: ok('Tool arguments are not JSON-serialisable: g'), check: calls(0) },
  { name: 'oversized args', code: 'try { await callTool("echo", "x".repeat(2000)) } catch (e) { return [e.code, e.message] }', options: { maxToolArgsBytes: 1000 }, expect: ok(['TOOL_ERROR', 'Tool arguments exceed 1000 bytes']), check: calls(0) },
  { name: 'oversized multi-byte args (UTF-8 counted)', code: 'try { await callTool("echo", "€".repeat(400)) } catch (e) { return e.message }', options: { maxToolArgsBytes: 1000 }, expect: ok('Tool arguments exceed 1000 bytes'), check: calls(0) },
  { name: 'args just under the limit pass', code: 'return (await callTool("echo", "x".repeat(990))).length', options: { maxToolArgsBytes: 1000 }, expect: ok(990), check: calls(1) },
  { name: 'undefined args', code: 'return [await callTool("echo"), await callTool("echo", undefined)]', expect: ok([null, null]), check: (t, _r, ctx) => t.same(ctx.calls.map((c) => c.args), [undefined, undefined]) },
  { name: 'toJSON decides the args', code: 'return await callTool("echo", { toJSON () { return { safe: true } } })', expect: ok({ safe: true }) },
  { name: 'large tool result arrives intact', code: 'return (await callTool("big", 200000)).length', expect: ok(200000) }
]

const names: Case[] = [
  { name: 'Cyrillic look-alike', code: 'await callTool("d\\u0430ta:query", {})', expect: fail('TOOL_NOT_FOUND', `Tool not found: "d\\u0430ta:query"${NAME_RULE}`, 'ToolError'), check: calls(0) },
  { name: 'zero-width space', code: 'await callTool("echo\\u200b", 1)', expect: fail('TOOL_NOT_FOUND', `Tool not found: "echo\\u200b"${NAME_RULE}`), check: calls(0) },
  { name: 'right-to-left override', code: 'await callTool("\\u202eohce", 1)', expect: fail('TOOL_NOT_FOUND', `Tool not found: "\\u202eohce"${NAME_RULE}`), check: calls(0) },
  { name: 'NUL byte', code: 'await callTool("echo\\u0000", 1)', expect: fail('TOOL_NOT_FOUND', `Tool not found: "echo\\u0000"${NAME_RULE}`), check: calls(0) },
  { name: 'full-width colon', code: 'await callTool("data\\uff1aquery", 1)', expect: fail('TOOL_NOT_FOUND'), check: calls(0) },
  { name: 'combining accent', code: 'await callTool("e\\u0301cho", 1)', expect: fail('TOOL_NOT_FOUND'), check: calls(0) },
  { name: 'trailing newline', code: 'await callTool("echo\\n", 1)', expect: fail('TOOL_NOT_FOUND', `Tool not found: "echo\\u000a"${NAME_RULE}`), check: calls(0) },
  { name: 'empty name', code: 'await callTool("", 1)', expect: fail('TOOL_NOT_FOUND', `Tool not found: ""${NAME_RULE}`), check: calls(0) },
  { name: 'very long name', code: 'await callTool("a".repeat(200), 1)', expect: fail('TOOL_NOT_FOUND', /^Tool not found: "a{64}\.\.\." \(tool names/), check: calls(0) },
  { name: 'emoji name', code: 'await callTool("echo\\u{1F600}", 1)', expect: fail('TOOL_NOT_FOUND', `Tool not found: "echo\\ud83d\\ude00"${NAME_RULE}`), check: calls(0) },
  { name: 'path-like name', code: 'await callTool("../../etc/passwd", 1)', expect: fail('TOOL_NOT_FOUND'), check: calls(0) },
  { name: 'non-string name', code: 'await callTool(42, 1)', expect: fail('TOOL_ERROR', 'Tool name must be a string'), check: calls(0) },
  { name: 'object name with toString', code: 'await callTool({ toString () { return "echo" } }, 1)', expect: fail('TOOL_ERROR', 'Tool name must be a string'), check: calls(0) },
  { name: 'plain ASCII names reach the handler exactly', code: 'try { await callTool("data:query", 1) } catch (e) {}\ntry { await callTool("a.b-c_d", 1) } catch (e) {}\nreturn 1', expect: ok(1), check: (t, _r, ctx) => t.same(ctx.calls.map((c) => (c as { name: string }).name), ['data:query', 'a.b-c_d']) }
]

t.test('tool-call floods and limit errors (STRICT)', async (t) => { runCorpus(t, floods, 'STRICT') })
t.test('tool error contract', async (t) => { runCorpus(t, contract) })
t.test('oversized and cyclic tool args', async (t) => { runCorpus(t, args) })
t.test('Unicode tricks in tool names', async (t) => { runCorpus(t, names) })
