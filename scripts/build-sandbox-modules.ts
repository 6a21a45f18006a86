// Builds the sandbox modules: every dependency of sandbox-modules/package.json (the allow-list,
// locked by the root lockfile) becomes one self-contained ESM file with no Node built-ins, plus the
// script form the runner evaluates, their bundled type declarations, and a manifest. A package is
// refused, with its name and the reason, when it imports a Node built-in, uses direct eval, or
// fails to load (or to do its smoke use) in a bare isolate under the enclave's walls.
//   node scripts/build-sandbox-modules.ts          build unless the inputs are unchanged
//   node scripts/build-sandbox-modules.ts --force  build anyway
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { build, transform, type Plugin } from 'esbuild'
import { checkModulesSnapshot, checkModuleUnderWalls } from '../services/enclave/runner/module-check.ts'
import { MODULES_DIR } from '../services/enclave/runner/sandbox-modules.ts'
import { bundleDeclarations } from './sandbox-module-types.ts'

const ROOT = join(import.meta.dirname, '..')
const PACKAGE_DIR = join(ROOT, 'sandbox-modules')
const OUT = MODULES_DIR
const GLOBAL_NAME = '__sandboxModule'

/** A real use of each shipped module, run under the walls at build time. */
const SMOKE: Record<string, string> = {
  zod: '(m) => m.z.object({ a: m.z.string() }).parse({ a: "x" })',
  'date-fns': '(m) => m.format(new Date(0), "yyyy-MM-dd")',
  'lodash-es': '(m) => m.groupBy([1, 2, 3], (n) => n % 2)',
  'decimal.js': '(m) => new m.default("0.1").plus("0.2").toString()',
  yaml: '(m) => m.parse("a: 1")'
}

export interface ManifestEntry {
  name: string
  version: string
  description: string
  /** The ESM bundle, and the script form the runner evaluates (its completion value is the namespace). */
  esm: string
  script: string
  bytes: number
  /** Heap a fresh context grows by when the module is loaded into it (measured at build). */
  heapBytes: number
}
export interface Manifest { inputs: string, modules: ManifestEntry[] }

export class ModuleRefused extends Error {}

function refuse (name: string, reason: string): never {
  throw new ModuleRefused(`sandbox module ${name} refused: ${reason}`)
}

// Anything Node has built in, with or without `node:`: the isolate has none of them.
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]))
function noBuiltins (name: string): Plugin {
  return {
    name: 'no-node-builtins',
    setup (b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (!BUILTINS.has(args.path) && !args.path.startsWith('node:')) return undefined
        return { errors: [{ text: `${name} imports the Node built-in '${args.path}' (from ${args.importer.replace(ROOT + '/', '')}), which the isolate does not have` }] }
      })
    }
  }
}

function packageInfo (name: string): { version: string, description: string } {
  const path = join(ROOT, 'node_modules', name, 'package.json')
  if (!existsSync(path)) refuse(name, `it is not installed (run npm ci): ${path} is missing`)
  const pkg = JSON.parse(readFileSync(path, 'utf8')) as { version: string, description?: string }
  return { version: pkg.version, description: pkg.description ?? '' }
}

/**
 * One package: ESM bundle, script form, and the check under the walls. `entry` is where to start
 * (the package's name, resolved from sandbox-modules/; tests give a file) and `use` its smoke use.
 */
export async function bundleModule (name: string, entry = name, use = SMOKE[name]): Promise<{ esm: string, script: string, exports: string[], heapBytes: number }> {
  let result
  try {
    result = await build({
      entryPoints: [entry],
      absWorkingDir: PACKAGE_DIR,
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      target: 'es2023',
      minify: true,
      legalComments: 'inline',
      // What bundlers give browser code too: some libraries look for the global object as `global`.
      define: { global: 'globalThis', 'process.env.NODE_ENV': '"production"' },
      plugins: [noBuiltins(name)],
      metafile: true,
      logLevel: 'silent'
    })
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string }> }).errors
    refuse(name, errors?.map((e) => e.text).join('; ') ?? String(err))
  }
  const directEval = result.warnings.find((w) => w.id === 'direct-eval')
  if (directEval !== undefined) refuse(name, `it uses direct eval, which the isolate refuses (${directEval.location?.file ?? ''})`)
  const esm = result.outputFiles[0].text
  // The same bundle as a script: an IIFE whose value is the namespace, without the global var.
  const iife = (await transform(esm, { format: 'iife', globalName: GLOBAL_NAME, minify: true, target: 'es2023', legalComments: 'inline' })).code
  const prefix = `var ${GLOBAL_NAME}=`
  const at = iife.indexOf(prefix)
  if (at < 0) refuse(name, 'esbuild did not produce the expected script form')
  const script = iife.slice(0, at) + '(' + iife.slice(at + prefix.length).trimEnd().replace(/;$/, '') + ')\n'
  const check = await checkModuleUnderWalls(name, script, use)
  if (!check.ok) refuse(name, check.reason)
  const exports = Object.values(result.metafile.outputs)[0]?.exports ?? []
  return { esm, script, exports, heapBytes: check.heapBytes }
}

/** The allow-list: sandbox-modules/package.json's dependencies, in name order. */
export function allowList (): string[] {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  return Object.keys(pkg.dependencies ?? {}).sort()
}

// What the output depends on: the allow-list, the lockfile (versions), this build and the walls.
function inputsHash (): string {
  const hash = createHash('sha256')
  const files = [
    join(PACKAGE_DIR, 'package.json'), join(ROOT, 'package-lock.json'), import.meta.filename,
    join(import.meta.dirname, 'sandbox-module-types.ts'), join(import.meta.dirname, 'lodash-types.ts'), join(ROOT, 'services/enclave/runner/sandbox-modules.ts'),
    join(ROOT, 'services/enclave/runner/module-snapshots.ts')
  ]
  const walls = join(ROOT, 'services/enclave/runner/isolate')
  for (const f of readdirSync(walls).sort()) files.push(join(walls, f))
  for (const f of files) hash.update(f).update(readFileSync(f))
  return hash.digest('hex')
}

export async function buildSandboxModules (force: boolean): Promise<Manifest> {
  const inputs = inputsHash()
  const manifestPath = join(OUT, 'manifest.json')
  if (!force && existsSync(manifestPath)) {
    const old = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest
    if (old.inputs === inputs) return old
  }
  rmSync(OUT, { recursive: true, force: true })
  mkdirSync(OUT, { recursive: true })
  const modules: ManifestEntry[] = []
  const exported: Array<{ name: string, exports: string[] }> = []
  for (const name of allowList()) {
    const { version, description } = packageInfo(name)
    const { esm, script, exports, heapBytes } = await bundleModule(name)
    exported.push({ name, exports })
    const file = name.replace(/[^a-z0-9.-]/gi, '_')
    writeFileSync(join(OUT, `${file}.mjs`), esm)
    writeFileSync(join(OUT, `${file}.script.js`), script)
    modules.push({ name, version, description, esm: `${file}.mjs`, script: `${file}.script.js`, bytes: Buffer.byteLength(esm), heapBytes })
  }
  const snapshot = await checkModulesSnapshot(modules.map((m) => m.name), (name) => readFileSync(join(OUT, modules.find((m) => m.name === name)!.script), 'utf8'))
  if (snapshot.ok) process.stdout.write(`sandbox modules: V8 snapshots them (all together: ${Math.round(snapshot.bytes / 1024)} KB)\n`)
  else process.stderr.write(`sandbox modules: V8 cannot snapshot them (runs will evaluate them instead): ${snapshot.reason}\n`)
  writeFileSync(join(OUT, 'modules.d.ts'), bundleDeclarations(exported, PACKAGE_DIR))
  const manifest: Manifest = { inputs, modules }
  // Written last: a build that failed half-way leaves no manifest, so it is not taken as done.
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}

if (import.meta.filename === process.argv[1]) {
  try {
    const started = performance.now()
    const manifest = await buildSandboxModules(process.argv.includes('--force'))
    const list = manifest.modules.map((m) => `${m.name}@${m.version} (${Math.round(m.bytes / 1024)} KB, +${Math.round(m.heapBytes / 1024)} KB heap)`).join(', ')
    process.stdout.write(`sandbox modules: ${list} [${Math.round(performance.now() - started)} ms]\n`)
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  }
}
