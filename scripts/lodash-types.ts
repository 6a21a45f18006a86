// lodash-es's declarations for agents, made from @types/lodash's own text. Why not through
// dts-bundle-generator as the other modules: @types/lodash-es re-exports each function from
// 'lodash', whose types live in module augmentations (`declare module "../index" { interface
// LoDashStatic { chunk(...) } }` in common/*.d.ts) that the bundler does not follow, so its
// block came out nearly empty. Here the augmentations are merged by hand into one `_` namespace,
// and each function lodash-es exports is declared as that member of LoDashStatic.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const AUGMENTATION = 'declare module "../index" {'

/** The body of `declare module 'lodash-es' { ... }` for these export names (the ESM bundle's). */
export function lodashDeclarations (exports: readonly string[], packageDir: string): string {
  const dir = dirname(createRequire(join(packageDir, 'package.json')).resolve('@types/lodash/package.json'))
  const index = readFileSync(join(dir, 'index.d.ts'), 'utf8')
  const files = [...index.matchAll(/^\/\/\/ <reference path="\.\/(common\/\w+\.d\.ts)" \/>$/gm)].map((m) => m[1])
  const preambles: string[] = []
  const members: string[] = []
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8')
    const at = text.indexOf(AUGMENTATION)
    const end = text.lastIndexOf('\n}')
    if (at < 0 || end < at) throw new Error(`@types/lodash/${file} is not shaped as expected (one ${AUGMENTATION} block)`)
    // File-level helpers stay beside the namespace; the file's own imports and markers go.
    preambles.push(text.slice(0, at).replace(/^import .*$/gm, '').replace(/^export \{\};?$/gm, '').replace(/^export const /gm, 'const ').trim())
    members.push(text.slice(at + AUGMENTATION.length, end))
  }
  const body = members.join('\n')
  // The functions LoDashStatic has: members of its interface blocks (8 spaces in, as @types
  // writes them; `concat` has 9).
  const statics = new Set<string>()
  for (const block of body.matchAll(/^ {4}interface LoDashStatic \{\n([\s\S]*?)^ {4}\}/gm)) {
    for (const m of block[1].matchAll(/^ {8,9}(\w+)\s*[<(?:]/gm)) statics.add(m[1])
  }
  const functions = exports.filter((name) => name !== 'default' && statics.has(name))
  return [
    preambles.filter((p) => p !== '').join('\n'),
    'namespace _ {',
    body,
    '}',
    'const _: _.LoDashStatic;',
    ...functions.map((name) => `export const ${name}: _.LoDashStatic['${name}'];`),
    // lodash-es also exports the wrapper itself by that name; its chain methods (wrapperAt...) are left out.
    ...(exports.includes('lodash') ? ['export const lodash: _.LoDashStatic;'] : []),
    'export default _;',
    ''
  ].join('\n')
}
