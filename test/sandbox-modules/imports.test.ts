// Sandbox modules in real isolates: each shipped module imported and used, the import rules,
// state that never outlives a run (same runner, same and other tenant), the walls with modules
// loaded, and their memory counted against the run.
import t, { type Test } from 'tap'
import { Enclave, type ExecutionResult, type RunOptions } from '../../services/enclave/index.ts'
import { loadModuleCatalog } from '../../services/sandbox-modules/catalog.ts'
import { constructorSweep } from '../support/module-sweep.ts'

const catalog = loadModuleCatalog()
const ALL = catalog.names
const strict = new Enclave({ runners: 1, securityLevel: 'STRICT', toolHandler: async () => null })
const secure = new Enclave({ runners: 1, securityLevel: 'SECURE', toolHandler: async () => null })
t.teardown(async () => { await Promise.all([strict.dispose(), secure.dispose()]) })

async function run (code: string, options: RunOptions = {}, enclave = strict): Promise<ExecutionResult> {
  return await enclave.run(code, { modules: ALL, isolateKey: 'tenant-a', ...options })
}
function value (t: Test, r: ExecutionResult): unknown {
  if (!r.success) t.fail(JSON.stringify(r.error))
  return r.value
}

t.test('the build shipped at least four modules, each with a version and a description', async (t) => {
  t.ok(ALL.length >= 4)
  for (const m of catalog.modules) t.match(m, { name: String, version: /^\d+\.\d+\.\d+/, description: /\w/ })
})

const USES: Array<{ name: string, code: string, expect: unknown }> = [
  { name: 'zod parses', code: "import { z } from 'zod'\nconst User = z.object({ name: z.string(), age: z.number().int() })\nconst bad = User.safeParse({ name: 1 })\nreturn [User.parse({ name: 'ada', age: 36 }), bad.success, bad.error.issues.length]", expect: [{ name: 'ada', age: 36 }, false, 2] },
  { name: 'date-fns formats and adds', code: "import { format, addDays } from 'date-fns'\nreturn format(addDays(new Date(Date.UTC(2024, 0, 30, 12)), 3), 'yyyy-MM-dd')", expect: '2024-02-02' },
  { name: 'lodash-es groups', code: "import { groupBy, sortBy } from 'lodash-es'\nreturn groupBy(sortBy(['bb', 'a', 'cc'], (s) => s), (s) => s.length)", expect: { 1: ['a'], 2: ['bb', 'cc'] } },
  { name: 'decimal.js adds exactly', code: "import Decimal from 'decimal.js'\nreturn [new Decimal('0.1').plus('0.2').toString(), 0.1 + 0.2 === 0.3]", expect: ['0.3', false] },
  { name: 'yaml parses and writes', code: "import { parse, stringify } from 'yaml'\nconst doc = parse('a: 1\\nb: [x, y]')\nreturn [doc, stringify({ c: 2 })]", expect: [{ a: 1, b: ['x', 'y'] }, 'c: 2\n'] }
]

t.test('each module imported at the top and really used (JavaScript)', async (t) => {
  for (const use of USES) t.same(value(t, await run(use.code)), use.expect, use.name)
})

t.test('await import() anywhere, namespace and default imports', async (t) => {
  t.same(value(t, await run("async function later () { const { z } = await import('zod'); return z.string().parse('ok') }\nreturn await later()")), 'ok')
  t.same(value(t, await run("import * as _ from 'lodash-es'\nimport D, { Decimal } from 'decimal.js'\nreturn [_.chunk([1, 2, 3], 2), D === Decimal]")), [[[1, 2], [3]], true])
  t.same(value(t, await run("import 'yaml'\nreturn 1")), 1, 'an import for effect only')
})

t.test('the same at SECURE (no AST check): imports are one rule at every level', async (t) => {
  t.same(value(t, await run("import { z } from 'zod'\nreturn z.number().parse(2)", {}, secure)), 2)
  const r = await run("import x from 'fs'\nreturn 1", {}, secure)
  t.match(r.error, { code: 'VALIDATION_ERROR', message: /^Module 'fs' cannot be imported: scripts may import only/ })
})

t.test('refusals are VALIDATION_ERROR naming the allowed modules', async (t) => {
  const list = `scripts may import only ${ALL.join(', ')}`
  const cases: Array<[string, string]> = [
    ["import _ from 'lodash'\nreturn 1", "Module 'lodash' cannot be imported"],
    ["const name = 'zod'\nreturn await import(name)", 'import() needs a string literal naming a module'],
    ["return await import('zo' + 'd')", 'import() needs a string literal naming a module'],
    ["return require('zod')", '`require()` is not available'],
    ["import x from './helpers.js'\nreturn x", "Module './helpers.js' cannot be imported"],
    ["import fs from 'node:fs'\nreturn fs", "Module 'node:fs' cannot be imported"],
    ["return await import('node:fs')", "Module 'node:fs' cannot be imported"]
  ]
  for (const [code, start] of cases) {
    const r = await run(code)
    t.equal(r.error?.code, 'VALIDATION_ERROR', code)
    t.ok(r.error?.message.includes(start) && r.error.message.includes(list), r.error?.message ?? code)
  }
})

t.test('a run allowed one module cannot import another', async (t) => {
  const r = await run("import { groupBy } from 'lodash-es'\nreturn 1", { modules: ['zod'] })
  t.match(r.error, { code: 'VALIDATION_ERROR', message: "Module 'lodash-es' cannot be imported: scripts may import only zod (line 1, column 25)" })
  const none = await run("import { z } from 'zod'\nreturn 1", { modules: [] })
  t.match(none.error, { code: 'VALIDATION_ERROR', message: /scripts may import no modules here/ })
  // The global the rewrite uses hands out only what this run loaded.
  const direct = await run("import { z } from 'zod'\nreturn await __enclaveImport('lodash-es').then(() => 'loaded', (e) => e.message)", { modules: ['zod', 'lodash-es'] })
  t.match(value(t, direct), /^Module "lodash-es" is not available to this script; it may import: zod$/)
})

t.test('state never outlives a run: same runner, same tenant and another tenant', async (t) => {
  const mutate = [
    "import { z } from 'zod'", "import * as _ from 'lodash-es'", "import Decimal from 'decimal.js'",
    "z.config({ customError: () => 'hacked' })",
    "_.default.groupBy = () => 'hacked'",
    'Decimal.set({ precision: 2 })',
    "try { _.chunk = () => 'hacked' } catch {}",
    'const seen = [z.string().safeParse(1).error.issues[0].message, _.default.groupBy([1], (n) => n), new Decimal(1).div(3).toString()]',
    'Object.getPrototypeOf(Decimal.prototype).hacked = 1',
    'return seen'
  ].join('\n')
  t.same(value(t, await run(mutate)), ['hacked', 'hacked', '0.33'], 'the mutations took inside their run')
  const observe = [
    "import { z } from 'zod'", "import * as _ from 'lodash-es'", "import Decimal from 'decimal.js'",
    'return [z.string().safeParse(1).error.issues[0].message, _.default.groupBy([1], (n) => n), new Decimal(1).div(3).toString().length > 4, ({}).hacked, _.chunk([1, 2], 1)]'
  ].join('\n')
  for (const key of ['tenant-a', 'tenant-b']) {
    const r = await run(observe, { isolateKey: key })
    t.same(value(t, r), ['Invalid input: expected string, received number', { 1: [1] }, true, undefined, [[1], [2]]], `next run of ${key}: nothing of the last one`)
  }
})

t.test('the walls hold with every module loaded', async (t) => {
  // Every function any module exports (and each class's methods): its constructor refuses.
  const sweep = constructorSweep(ALL)
  const r = await run(sweep, {}, secure)
  const out = value(t, r) as { tried: number, leaks: string[], host: string[] }
  t.ok(out.tried > 500, `${out.tried} functions tried`)
  t.same(out.leaks, [], 'no function constructor works')
  t.same(out.host, ['undefined', 'undefined', 'undefined', 'undefined', 'undefined'], 'no host globals appeared')
  // lodash's template builds a Function from text: under the walls it cannot.
  const template = await run("import { template } from 'lodash-es'\nreturn template('<%= x %>')({ x: 1 })", {}, secure)
  t.match(template.error, { code: 'EXECUTION_ERROR', name: 'EvalError', message: 'Code generation from strings is disabled in the enclave' })
  // zod detects that code generation is off and still validates (its slower path).
  t.same(value(t, await run("import { z } from 'zod'\nreturn z.object({ a: z.string() }).parse({ a: 'x', b: 1 })", {}, secure)), { a: 'x' })
  const viaModule = await run("import { z } from 'zod'\nreturn z.string().constructor.constructor('return 1')()")
  t.match(viaModule.error, { code: 'VALIDATION_ERROR', message: /access to `constructor` is not allowed/ }, 'STRICT still refuses the text')
})

t.test('a module import counts against the run memory', async (t) => {
  const bare = await run('return 1', { isolateKey: 'mem' })
  const withZod = await run("import { z } from 'zod'\nreturn 1", { isolateKey: 'mem' })
  t.ok(withZod.stats.peakHeapBytes! > bare.stats.peakHeapBytes! + 512 * 1024, `zod: ${withZod.stats.peakHeapBytes} vs ${bare.stats.peakHeapBytes} bytes`)
  const tight = await run("import { z } from 'zod'\nconst keep = []\nfor (let i = 0; i < 1e6; i++) keep.push(z.string())\nreturn keep.length", { isolateKey: 'mem', memoryLimitMB: 8 })
  t.equal(tight.error?.code, 'MEMORY_LIMIT_EXCEEDED')
})

t.test('a script importing every module fits the free tier memory (32 MB)', async (t) => {
  const imports = ALL.map((name, i) => `import * as m${i} from '${name}'`).join('\n')
  const r = await run(`${imports}\nreturn [${ALL.map((_, i) => `Object.keys(m${i}).length > 0`).join(', ')}]`, { isolateKey: 'free', memoryLimitMB: 32 })
  t.same(value(t, r), ALL.map(() => true))
  t.ok(r.stats.peakHeapBytes! < 32 * 1024 * 1024, `${r.stats.peakHeapBytes} bytes at peak`)
})
