// The sandbox-modules build refuses, naming the package and the reason, what cannot work in the
// isolate: a Node built-in import, direct eval, code generation at load or in its smoke use.
import { test } from 'tap'
import { join } from 'node:path'
import { allowList, bundleModule, ModuleRefused } from '../../scripts/build-sandbox-modules.ts'
import { loadModuleCatalog } from '../../services/sandbox-modules/catalog.ts'
import { typeCheck } from '../code-mode/type-check.ts'

const fixture = (file: string): string => join(import.meta.dirname, 'fixtures', file)

async function refusal (name: string, file: string, use?: string): Promise<string> {
  try {
    await bundleModule(name, fixture(file), use)
  } catch (err) {
    if (err instanceof ModuleRefused) return err.message
    throw err
  }
  throw new Error(`${name} was not refused`)
}

test('a package importing a node: built-in is refused, naming the package and the import', async (t) => {
  const message = await refusal('uses-fs', 'uses-fs.js')
  t.match(message, /^sandbox module uses-fs refused: uses-fs imports the Node built-in 'node:fs'/)
})

test('a bare built-in name (path) is refused the same way', async (t) => {
  t.match(await refusal('uses-path', 'uses-path.js'), /uses-path imports the Node built-in 'path'/)
})

test('a package that builds a Function when it loads is refused as needing eval or Function', async (t) => {
  t.match(await refusal('needs-function', 'needs-function.js'), /^sandbox module needs-function refused: needs eval or Function \(fails to load/)
})

test('direct eval is refused at bundle time', async (t) => {
  t.match(await refusal('direct-eval', 'direct-eval.js'), /^sandbox module direct-eval refused: it uses direct eval/)
})

test('code generation in the smoke use is refused too', async (t) => {
  t.match(await refusal('needs-function-later', 'needs-function-later.js', '(m) => m.compile("return 1")()'), /needs eval or Function \(fails its smoke use/)
})

test('a plain package bundles into ESM and a script whose value is its namespace', async (t) => {
  const built = await bundleModule('fine', fixture('fine.js'), '(m) => m.double(2) + m.default.double(1)')
  t.same(built.exports.sort(), ['default', 'double'])
  t.match(built.esm, /export\s*\{/)
  t.notMatch(built.script, /__sandboxModule/)
  t.ok(built.heapBytes > 0)
})

test('the allow-list is sandbox-modules/package.json, and it has at least four modules', async (t) => {
  const list = allowList()
  t.ok(list.length >= 4)
  for (const name of ['zod', 'date-fns', 'lodash-es', 'decimal.js']) t.ok(list.includes(name), name)
})

// What an agent gets from /api/modules.d.ts, checked as its own code would be (strict, lib es2023,
// no DOM): the declarations themselves too (a .ts file, so skipLibCheck does not skip them).
test('the shipped declarations type-check, and type real uses of each module', async (t) => {
  const declarations = loadModuleCatalog().declarations
  const script = `import { groupBy, chunk, concat } from 'lodash-es'
import _ from 'lodash-es'
import { parse, Scalar } from 'yaml'
import { z } from 'zod'
import { format } from 'date-fns'
import Decimal from 'decimal.js'
const groups: Record<string, number[]> = groupBy([1, 2, 3], (n) => n % 2)
const chunks: number[][] = chunk(concat([1], 2, [3]), 2)
const sorted: string[] = _.sortBy(['b', 'a'])
const doc: unknown = parse('a: 1')
const plain: string = Scalar.PLAIN
const user: { a: string } = z.object({ a: z.string() }).parse({ a: 'x' })
const day: string = format(new Date(0), 'yyyy-MM-dd')
const sum: string = new Decimal('0.1').plus('0.2').toString()
// @ts-expect-error lodash's chunk takes an array
chunk(1)
export { groups, chunks, sorted, doc, plain, user, day, sum }
`
  t.same(typeCheck({ '/modules.ts': declarations, '/script.ts': script }), [])
  const lodash = declarations.split(/\n(?=declare module ')/).find((block) => block.startsWith("declare module 'lodash-es'")) ?? ''
  t.ok((lodash.match(/^ {2}export const /gm) ?? []).length > 300, "lodash-es declares its functions (from @types/lodash's augmentations)")
})
