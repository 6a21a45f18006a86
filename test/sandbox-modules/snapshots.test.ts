// Sandbox modules from V8 snapshots (services/enclave/runner/module-snapshots.ts): once a runner
// has a snapshot of the modules a run imports, the run's context starts with them evaluated.
// What users rely on stays as without it: state never outlives a run, a run reaches only the
// modules it imported, the global and its walls are those of every other run.
import t from 'tap'
import { Enclave, type ExecutionResult, type RunEvent, type RunOptions } from '../../services/enclave/index.ts'
import { loadModuleCatalog } from '../../services/sandbox-modules/catalog.ts'
import { constructorSweep } from '../support/module-sweep.ts'

const ALL = loadModuleCatalog().names
const strict = new Enclave({ runners: 1, securityLevel: 'STRICT', toolHandler: async () => null })
const secure = new Enclave({ runners: 1, securityLevel: 'SECURE', toolHandler: async () => null })
t.teardown(async () => { await Promise.all([strict.dispose(), secure.dispose()]) })

/** Runs `code` and returns its result with the isolate that ran it ('pid:n@zod' when made from a snapshot). */
async function run (code: string, options: RunOptions = {}, enclave = strict): Promise<{ r: ExecutionResult, isolate: string }> {
  let isolate = ''
  const executionId = `snap-${Math.random().toString(36).slice(2)}`
  const onRun = (e: RunEvent): void => { if (e.executionId === executionId) isolate = e.isolateId ?? '' }
  enclave.on('run', onRun)
  const r = await enclave.run(code, { modules: ALL, isolateKey: 'tenant-a', ...options, executionId })
  enclave.off('run', onRun)
  if (!r.success) t.comment(JSON.stringify(r.error))
  return { r, isolate }
}

/**
 * The runner makes a snapshot while it has no run, after a run asked for it: the first run of a
 * set evaluates its modules, a later one starts from the snapshot. Runs until that happened.
 */
async function fromSnapshot (code: string, options: RunOptions = {}, enclave = strict): Promise<{ r: ExecutionResult, isolate: string }> {
  for (let i = 0; i < 20; i++) {
    const out = await run(code, options, enclave)
    if (out.isolate.includes('@')) return out
  }
  throw new Error(`no run of ${JSON.stringify(code)} came from a snapshot`)
}

t.test('a run importing zod starts from a snapshot of exactly the modules it imports', async (t) => {
  const { r, isolate } = await fromSnapshot("import { z } from 'zod'\nreturn z.object({ a: z.string() }).parse({ a: 'x' })")
  t.same(r.value, { a: 'x' })
  t.match(isolate, /@zod$/, 'an isolate made from the zod snapshot')
  const two = await fromSnapshot("import { groupBy } from 'lodash-es'\nimport { z } from 'zod'\nreturn groupBy(z.array(z.number()).parse([1, 2, 3]), (n) => n % 2)")
  t.same(two.r.value, { 0: [2], 1: [1, 3] })
  t.match(two.isolate, /@lodash-es\+zod$/, 'a set of modules has its own snapshot')
})

t.test('state never outlives a run from a snapshot: same isolate, same tenant and another', async (t) => {
  const mutate = [
    "import { z } from 'zod'",
    "z.config({ customError: () => 'hacked' })",
    "Object.getPrototypeOf(z.string()).parse = () => 'hacked parse'",
    'Object.prototype.hacked = 1',
    'globalThis.leftOver = 1',
    'return [z.string().safeParse(1).error.issues[0].message, z.string().parse(1)]'
  ].join('\n')
  const first = await fromSnapshot(mutate)
  t.same(first.r.value, ['hacked', 'hacked parse'], 'the mutations took inside their run')
  const observe = "import { z } from 'zod'\nreturn [z.string().safeParse(1).error.issues[0].message, z.string().parse('ok'), ({}).hacked, typeof leftOver]"
  const pristine = ['Invalid input: expected string, received number', 'ok', undefined, 'undefined']
  const same = await run(observe)
  t.equal(same.isolate, first.isolate, 'the next run of the tenant ran in the same isolate')
  t.same(same.r.value, pristine, 'and saw nothing of the last run')
  const other = await fromSnapshot(observe, { isolateKey: 'tenant-b' })
  t.not(other.isolate, first.isolate, 'another tenant never gets that isolate')
  t.same(other.r.value, pristine, 'nor anything of the last run')
})

t.test('a run reaches only the modules it imported, never others of the catalog', async (t) => {
  const globals = 'Object.getOwnPropertyNames(globalThis).filter((n) => /enclave|snapshot|sandbox|lodash|yaml|zod|decimal/i.test(n))'
  const probe = `import { z } from 'zod'\nreturn [${globals}, await __enclaveImport('lodash-es').then(() => 'loaded', (e) => e.message)]`
  const { r } = await fromSnapshot(probe, { modules: ['zod', 'lodash-es'] })
  // zod's own globals (it keeps its config there), as when it is evaluated in the run.
  t.same(r.value, [['__enclaveImport', '__zod_globalConfig', '__zod_globalRegistry'], 'Module "lodash-es" is not available to this script; it may import: zod'])
  // A tenant narrowed to date-fns cannot import zod, though this runner has zod in a snapshot.
  const narrowed = await run("import { z } from 'zod'\nreturn 1", { modules: ['date-fns'], isolateKey: 'tenant-c' })
  t.match(narrowed.r.error, { code: 'VALIDATION_ERROR', message: /^Module 'zod' cannot be imported: scripts may import only date-fns/ })
  const direct = await fromSnapshot(`import { format } from 'date-fns'\nreturn [${globals}, await __enclaveImport('zod').then(() => 'loaded', (e) => e.message)]`, { modules: ['date-fns'], isolateKey: 'tenant-c' })
  t.same(direct.r.value, [['__enclaveImport'], 'Module "zod" is not available to this script; it may import: date-fns'], 'nothing of zod in a date-fns run')
})

t.test('a snapshot context has the global and the walls of any other context', async (t) => {
  const surface = 'const names = Object.getOwnPropertyNames(globalThis).filter((n) => n !== "__enclaveImport").sort()\n' +
    'const refused = (f) => { try { f(); return "ran" } catch (e) { return e.name } }\n' +
    'return { names, wasm: typeof WebAssembly, sab: typeof SharedArrayBuffer, atomics: typeof Atomics, finalizers: typeof FinalizationRegistry,\n' +
    '  fn: refused(() => (function () {}).constructor("return 1")()), asyncFn: refused(() => (async function () {}).constructor("return 1")),\n' +
    '  gen: refused(() => (function * () {}).constructor("return 1")), evalText: refused(() => eval("1")), global: refused(() => Function("return 1")) }'
  const plain = await run(`${surface}`, { isolateKey: 'walls' }, secure)
  t.notMatch(plain.isolate, /@/, 'a run without imports: a plain isolate')
  const snap = await fromSnapshot(`import 'yaml'\n${surface}`, { isolateKey: 'walls' }, secure)
  t.same(snap.r.value, plain.r.value, 'the same globals and walls')
  t.match(plain.r.value, { wasm: 'undefined', sab: 'undefined', atomics: 'undefined', finalizers: 'undefined', fn: 'EvalError', asyncFn: 'EvalError', gen: 'EvalError', evalText: 'EvalError', global: 'EvalError' })
})

t.test('every function a snapshot module exports refuses to build code', async (t) => {
  const sweep = constructorSweep(ALL)
  const { r, isolate } = await fromSnapshot(sweep, {}, secure)
  t.match(isolate, new RegExp(`@${ALL.join('\\+')}$`.replace(/\./g, '\\.')))
  const out = r.value as { tried: number, leaks: string[], host: string[] }
  t.ok(out.tried > 500, `${out.tried} functions tried`)
  t.same(out.leaks, [], 'no function constructor works')
  t.same(out.host, ['undefined', 'undefined', 'undefined', 'undefined', 'undefined'], 'no host globals appeared')
})

t.test('Math.random is not frozen into the snapshot', async (t) => {
  const code = "import Decimal from 'decimal.js'\nreturn [Math.random(), Decimal.random().toString()]"
  const a = await fromSnapshot(code, { isolateKey: 'random' })
  const b = await run(code, { isolateKey: 'random' })
  t.equal(b.isolate, a.isolate, 'two runs in one snapshotted isolate')
  t.not((a.r.value as unknown[])[0], (b.r.value as unknown[])[0])
  t.not((a.r.value as unknown[])[1], (b.r.value as unknown[])[1])
})

t.test('below 16 MB runs evaluate their modules (a snapshot isolate holds a second copy)', async (t) => {
  for (let i = 0; i < 3; i++) {
    const { r, isolate } = await run("import { z } from 'zod'\nreturn z.number().parse(1)", { isolateKey: 'small', memoryLimitMB: 8 })
    t.equal(r.value, 1)
    t.notMatch(isolate, /@/, 'a plain isolate')
  }
})

t.test('a run from a snapshot records and replays its drawn values as any run does', async (t) => {
  const code = "import { z } from 'zod'\nreturn [z.number().parse(Math.random()), Date.now()]"
  const drawn: number[] = []
  const first = await fromSnapshot(code, { isolateKey: 'replay', onDrawn: (values) => { if (values !== null) drawn.push(...values) } })
  const values = first.r.value as number[]
  t.same(drawn.slice(-2), values, 'recorded live, nothing drawn while zod loaded counts')
  const again = await run(code, { isolateKey: 'replay', replay: values })
  t.match(again.isolate, /@zod$/)
  t.same(again.r.value, values, 'replayed exactly')
})
