// The sandbox-modules build refuses, naming the package and the reason, what cannot work in the
// isolate: a Node built-in import, direct eval, code generation at load or in its smoke use.
import { test } from 'tap'
import { join } from 'node:path'
import { allowList, bundleModule, ModuleRefused } from '../../scripts/build-sandbox-modules.ts'

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
