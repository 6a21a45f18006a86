// Security corpus: prototype pollution inside the isolate, across runs of one key, and through
// tool arguments with __proto__/constructor keys. Each case asserts its exact outcome.
import t from 'tap'
import { Enclave } from '../../services/enclave/index.ts'
import { type Case, fail, ok, runCorpus, testHandler } from './fixtures/helpers.ts'

const cases: Case[] = [
  { name: 'polluting Object.prototype affects only this run', code: 'Object.prototype.polluted = 1\nreturn ({}).polluted', expect: ok(1) },
  { name: 'polluting Array.prototype affects only this run', code: 'Array.prototype.map = () => "x"\nreturn [1].map((v) => v)', expect: ok('x') },
  {
    name: '__proto__ key in tool args is dropped before the handler',
    code: 'return await callTool("inspect", JSON.parse(\'{"__proto__": {"polluted": true}, "a": 1}\'))',
    expect: ok({ keys: ['a'], hasOwnProto: false, protoIsObject: true, hostPolluted: false })
  },
  {
    name: 'escaped __proto__ key is dropped too',
    code: 'return await callTool("inspect", JSON.parse(\'{"\\\\u005f_proto__": {"polluted": true}, "b": 2}\'))',
    expect: ok({ keys: ['b'], hasOwnProto: false, protoIsObject: true, hostPolluted: false })
  },
  {
    name: 'nested __proto__ keys are dropped',
    code: 'const r = await callTool("echo", { a: JSON.parse(\'{"__proto__": {"x": 1}, "y": 2}\') })\nreturn [Object.keys(r.a), r.a.x]',
    expect: ok([['y'], null])
  },
  {
    name: 'constructor.prototype keys stay plain data',
    code: 'return await callTool("inspect", { constructor: { prototype: { polluted: true } } })',
    expect: ok({ keys: ['constructor'], hasOwnProto: false, protoIsObject: true, hostPolluted: false }),
    check: (t, _r, ctx) => {
      const args = ctx.calls[0].args as { constructor: { prototype: { polluted: boolean } } }
      t.equal(args.constructor.prototype.polluted, true, 'the handler sees the data')
      t.equal(({} as Record<string, unknown>).polluted, undefined, 'host Object.prototype is clean')
    }
  },
  {
    name: 'handler args are objects of the host realm',
    code: 'await callTool("echo", { a: [1, { b: 2 }] })',
    expect: { success: true, noValue: true },
    check: (t, _r, ctx) => {
      const args = ctx.calls[0].args as { a: [number, { b: number }] }
      t.ok(Array.isArray(args.a))
      t.equal(Object.getPrototypeOf(args.a[1]), Object.prototype)
    }
  },
  { name: 'patched JSON.stringify does not change tool args', code: 'JSON.stringify = () => \'"hacked"\'\nreturn await callTool("echo", { a: 1 })', expect: ok({ a: 1 }) },
  { name: 'patched JSON.parse does not change tool results', code: 'JSON.parse = () => "hacked"\nreturn await callTool("echo", { a: 1 })', expect: ok({ a: 1 }) },
  { name: 'replaced Promise does not break callTool', code: 'globalThis.Promise = function () { throw new Error("x") }\nreturn await callTool("echo", 3)', expect: ok(3) },
  { name: 'patched Promise.prototype.then sees only results', code: 'const orig = Promise.prototype.then\nPromise.prototype.then = function (...a) { return Reflect.apply(orig, this, a) }\nreturn await callTool("echo", 2)', expect: ok(2) },
  { name: 'patched Map.prototype.get does not reach pending calls', code: 'Map.prototype.get = () => ({ resolve () {}, reject () {} })\nreturn await callTool("echo", 4)', expect: ok(4) },
  { name: 'patched WeakMap.prototype.get cannot launder tool errors', code: 'WeakMap.prototype.get = () => undefined\nawait callTool("deny")', expect: fail('PERMISSION_DENIED', 'Permission denied: tool:deny', 'ToolError') },
  {
    name: 'setters on Object.prototype see nothing of the enclave',
    code: 'const seen = []\nfor (const k of ["code", "message", "resolve", "reject", "level", "name"]) Object.defineProperty(Object.prototype, k, { set (v) { seen.push(k) }, configurable: true })\nconsole.log("x")\ntry { await callTool("deny") } catch (e) { seen.push(e.code) }\nawait callTool("echo", 1)\nreturn seen',
    expect: ok(['PERMISSION_DENIED'])
  },
  {
    name: 'index setters on Array.prototype see nothing of the enclave',
    code: 'let leak = 0\nObject.defineProperty(Array.prototype, "0", { set (v) { leak++ }, configurable: true })\nconsole.log("x", 1)\nawait callTool("echo", 1)\nreturn leak',
    expect: ok(0)
  },
  { name: 'freezing intrinsics does not break the enclave', code: 'Object.freeze(Object.prototype)\nObject.freeze(Array.prototype)\nObject.freeze(Promise.prototype)\nconsole.log("ok")\nreturn await callTool("echo", 5)', expect: ok(5) },
  { name: 'overriding console methods affects only the script', code: 'console.log = () => { throw new Error("mine") }\nconsole.log("x")', expect: fail('EXECUTION_ERROR', 'mine') }
]

t.test('prototype pollution', async (t) => { runCorpus(t, cases) })

t.test('pollution never survives into the next run of the same key', async (t) => {
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 1, toolHandler: testHandler })
  t.teardown(async () => await enclave.dispose())
  const events: Array<{ isolateId?: string, reused: boolean }> = []
  enclave.on('run', (e: { isolateId?: string, reusedIsolate: boolean }) => events.push({ isolateId: e.isolateId, reused: e.reusedIsolate }))
  const first = await enclave.run('Object.prototype.polluted = 1\nArray.prototype.push = null\nglobalThis.leftover = 42\nJSON.stringify = null\nreturn 1', { isolateKey: 'same' })
  t.equal(first.success, true)
  const second = await enclave.run('return [({}).polluted, typeof [].push, typeof leftover, typeof JSON.stringify]', { isolateKey: 'same' })
  t.same(second.value, [null, 'function', 'undefined', 'function'], 'fresh context: nothing left over')
  t.equal(events[1].reused, true, 'same isolate was reused')
  t.equal(events[0].isolateId, events[1].isolateId, 'same isolate id')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'host untouched')
})
