// The sandbox modules' type declarations for agents (GET /api/modules.d.ts): each package's own
// .d.ts, bundled by dts-bundle-generator into one `declare module 'name' { ... }` block. Why that
// tool: it is maintained, runs on the TypeScript compiler already in the tree, inlines a whole
// package's declarations (inlinedLibraries) and tree-shakes them to what the entry exports, which
// api-extractor (made for a project's own entry point) and rollup-plugin-dts (a rollup build) do
// with more set-up.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateDtsBundle } from 'dts-bundle-generator'
import { lodashDeclarations } from './lodash-types.ts'

/** `exports` per module name: its ESM bundle's export names (a `default` is re-exported too). */
export function bundleDeclarations (modules: Array<{ name: string, exports: string[] }>, packageDir: string): string {
  const entries = join(packageDir, '.types-entry')
  rmSync(entries, { recursive: true, force: true })
  mkdirSync(entries, { recursive: true })
  try {
    const outputs = modules.map((m, i) => {
      if (m.name === 'lodash-es') return lodashDeclarations(m.exports, packageDir)
      const file = join(entries, `m${i}.ts`)
      const generate = (withDefault: boolean): string => {
        writeFileSync(file, `export * from '${m.name}'\n${withDefault ? `export { default } from '${m.name}'\n` : ''}`)
        return generateDtsBundle([{
          filePath: file,
          libraries: { inlinedLibraries: [m.name] },
          output: { noBanner: true }
        }], { preferredConfigPath: join(packageDir, 'tsconfig.json') })[0]
      }
      // A default export the bundle has but the package's types do not declare is left out.
      if (!m.exports.includes('default')) return generate(false)
      try { return generate(true) } catch { return generate(false) }
    })
    // Inside `declare module` everything is already ambient: `declare` is dropped.
    return modules.map((m, i) => `declare module '${m.name}' {\n${indent(repair(outputs[i]).replace(/^export \{\};?\s*$/m, '').replace(/^(export )?declare /gm, '$1'))}}\n`).join('\n')
  } finally {
    rmSync(entries, { recursive: true, force: true })
  }
}

/**
 * What dts-bundle-generator (9.x) prints wrong, put right so the declarations type-check:
 * - a class whose namespace twin declares types of the same names as its static constants (yaml's
 *   `Scalar.PLAIN`) comes out as `static readonly Scalar;` followed by `PLAIN = "PLAIN";`;
 * - names of web globals the isolate does not have either (zod's URL helpers name `URL`, which
 *   lib es2023 lacks): declared inside the module's block only, so scripts are not told the
 *   isolate has them.
 */
export function repair (text: string): string {
  let out = text.replace(/static readonly (\w+);\n(\s*)(\w+) = ("[^"\n]*");/g, 'static readonly $3 = $4;')
  if (/\bURL\b(?!_)/.test(out.replace(/\/\*[\s\S]*?\*\//g, '')) && !/\b(interface|class|type) URL\b/.test(out)) {
    out += '/** Named by internal helpers only: the isolate has no URL. */\ninterface URL {\n\treadonly href: string;\n}\n'
  }
  return out
}

function indent (text: string): string {
  return text.split('\n').map((line) => line === '' ? '' : `  ${line}`).join('\n').replace(/\n+$/, '\n')
}
