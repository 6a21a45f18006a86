// Compiles services/enclave to JavaScript for the benchmark, so it measures what production runs
// (node on compiled dist-style files, no type stripping). The output goes to a cache
// directory inside node_modules so that bare imports (isolated-vm, acorn) still resolve.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

export async function loadCompiledEnclave (root: string): Promise<typeof import('../services/enclave/index.ts')> {
  // One directory per checkout: node_modules may be shared between worktrees, and two benchmarks
  // compiling into the same place would run each other's code.
  const outDir = resolve(root, 'node_modules/.cache', `tenant-enclave-bench-${createHash('sha1').update(resolve(root)).digest('hex').slice(0, 12)}`)
  mkdirSync(outDir, { recursive: true })
  const tsconfig = join(outDir, 'tsconfig.json')
  writeFileSync(tsconfig, JSON.stringify({
    extends: join(root, 'tsconfig.json'),
    compilerOptions: { outDir, rootDir: root, sourceMap: false, noEmit: false },
    include: [join(root, 'services/enclave/**/*.ts'), join(root, 'schemas/*.ts')]
  }))
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', tsconfig], { stdio: 'inherit' })
  return await import(pathToFileURL(join(outDir, 'services/enclave/index.js')).href) as typeof import('../services/enclave/index.ts')
}
