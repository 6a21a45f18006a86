// The sandbox modules' type declarations for agents (GET /api/modules.d.ts): each package's own
// .d.ts, bundled by dts-bundle-generator into one `declare module 'name' { ... }` block. Why that
// tool: it is maintained, runs on the TypeScript compiler already in the tree, inlines a whole
// package's declarations (inlinedLibraries) and tree-shakes them to what the entry exports, which
// api-extractor (made for a project's own entry point) and rollup-plugin-dts (a rollup build) do
// with more set-up.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateDtsBundle } from 'dts-bundle-generator'

/** `exports` per module name: its ESM bundle's export names (a `default` is re-exported too). */
export function bundleDeclarations (modules: Array<{ name: string, exports: string[] }>, packageDir: string): string {
  const entries = join(packageDir, '.types-entry')
  rmSync(entries, { recursive: true, force: true })
  mkdirSync(entries, { recursive: true })
  try {
    const outputs = modules.map((m, i) => {
      const file = join(entries, `m${i}.ts`)
      const generate = (withDefault: boolean): string => {
        writeFileSync(file, `export * from '${m.name}'\n${withDefault ? `export { default } from '${m.name}'\n` : ''}`)
        return generateDtsBundle([{
          filePath: file,
          libraries: { inlinedLibraries: [m.name, ...(m.name === 'lodash-es' ? ['@types/lodash-es', '@types/lodash'] : [])] },
          output: { noBanner: true }
        }], { preferredConfigPath: join(packageDir, 'tsconfig.json') })[0]
      }
      // A default export the bundle has but the package's types do not declare is left out.
      if (!m.exports.includes('default')) return generate(false)
      try { return generate(true) } catch { return generate(false) }
    })
    // Inside `declare module` everything is already ambient: `declare` is dropped.
    return modules.map((m, i) => `declare module '${m.name}' {\n${indent(outputs[i].replace(/^export \{\};?\s*$/m, '').replace(/^(export )?declare /gm, '$1'))}}\n`).join('\n')
  } finally {
    rmSync(entries, { recursive: true, force: true })
  }
}

function indent (text: string): string {
  return text.split('\n').map((line) => line === '' ? '' : `  ${line}`).join('\n').replace(/\n+$/, '\n')
}
