// Sandbox modules inside a run's context: the allow-listed npm libraries that scripts import.
//
// Why scripts, not isolated-vm Modules: tenant code runs as the body of an async function (see
// isolate/script-outcome.ts), where `import` declarations cannot appear; the checks rewrite them
// into `await __enclaveImport('name')` (common/module-imports.ts). A module is built as a script
// whose completion value is its namespace object, so one compiled Script per isolate can be run
// in each fresh context: an ivm Module instantiates into one context only and would be compiled
// again for every run. The script's V8 code cache is made once per runner and handed to every
// new isolate, so even a new isolate compiles a module without parsing it.
//
// Each run that imports a module evaluates it afresh in its own context, after the bootstrap's
// walls are up (no Function, no eval): its state (exports, prototypes, caches) lives and dies with
// the run, its heap is the run's isolate heap (counted against the run's memory limit), and its
// evaluation is the run's CPU time.
import ivm from 'isolated-vm'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { IMPORT_FUNCTION } from '../common/module-imports.ts'

export { IMPORT_FUNCTION }

// Installs `__enclaveImport` and returns `register(name, namespace)`; runs once per context
// that imports anything. `allowed` is only for the message of a name not loaded.
export const INSTALLER = `(function () {
'use strict'
const loaded = new Map()
const get = Map.prototype.get
const has = Map.prototype.has
const set = Map.prototype.set
const apply = Reflect.apply
const resolve = Promise.resolve.bind(Promise)
const reject = Promise.reject.bind(Promise)
const names = []
const enclaveImport = function (name) {
  if (typeof name === 'string' && apply(has, loaded, [name])) return resolve(apply(get, loaded, [name]))
  return reject(new TypeError('Module ' + JSON.stringify(String(name)) + ' is not available to this script; it may import: ' + (names.join(', ') || 'no modules')))
}
Object.defineProperty(globalThis, '${IMPORT_FUNCTION}', { value: enclaveImport, writable: false, enumerable: false, configurable: false })
return function register (name, namespace) { apply(set, loaded, [name, namespace]); names.push(name) }
})()`

/** Where the build step put the bundles: sandbox-modules/dist below the project's root. */
export const MODULES_DIR = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../../sandbox-modules/dist/' : '../../../sandbox-modules/dist/', import.meta.url))

interface Compiled { installer: ivm.Script, modules: Map<string, ivm.Script> }

/**
 * Compiled module scripts, kept per isolate, with the sources and code caches kept per runner.
 * `read` gives a module's script source (the built file by default; the build's own check
 * passes the bundle it just made).
 */
export class ModuleHost {
  private readonly sources = new Map<string, string>()
  private readonly caches = new Map<string, ivm.ExternalCopy<ArrayBuffer>>()
  private readonly compiled = new WeakMap<ivm.Isolate, Compiled>()
  private readonly read: (name: string) => string

  constructor (read: (name: string) => string = readBuilt) {
    this.read = read
  }

  private source (name: string): string {
    let source = this.sources.get(name)
    if (source === undefined) {
      source = this.read(name)
      this.sources.set(name, source)
    }
    return source
  }

  private async compile (isolate: ivm.Isolate, name: string, source: string): Promise<ivm.Script> {
    const cachedData = this.caches.get(name)
    const script = await isolate.compileScript(source, {
      filename: `sandbox-module:${name}`,
      ...(cachedData !== undefined ? { cachedData } : { produceCachedData: true })
    })
    // A rejected cache (another V8 flag set) still compiles; a fresh one is kept for next time.
    const made = (script as ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer> }).cachedData
    if (made !== undefined && (cachedData === undefined || (script as { cachedDataRejected?: boolean }).cachedDataRejected === true)) this.caches.set(name, made)
    return script
  }

  private async scripts (isolate: ivm.Isolate, names: readonly string[]): Promise<{ installer: ivm.Script, modules: ivm.Script[] }> {
    let compiled = this.compiled.get(isolate)
    if (compiled === undefined) {
      compiled = { installer: await this.compile(isolate, '#installer', INSTALLER), modules: new Map() }
      this.compiled.set(isolate, compiled)
    }
    const modules: ivm.Script[] = []
    for (const name of names) {
      let script = compiled.modules.get(name)
      if (script === undefined) {
        script = await this.compile(isolate, name, this.source(name))
        compiled.modules.set(name, script)
      }
      modules.push(script)
    }
    return { installer: compiled.installer, modules }
  }

  /**
   * Evaluates `names` in `context` (after its bootstrap ran) and makes them importable there.
   * Throws what the isolate threw: a module that fails under the walls, or the memory limit.
   */
  async load (isolate: ivm.Isolate, context: ivm.Context, names: readonly string[], timeoutMs: number): Promise<void> {
    if (names.length === 0) return
    const { installer, modules } = await this.scripts(isolate, names)
    const register = await installer.run(context, { reference: true, timeout: timeoutMs }) as ivm.Reference<(name: string, ns: unknown) => void>
    try {
      for (let i = 0; i < names.length; i++) {
        const ns = await modules[i].run(context, { reference: true, timeout: timeoutMs }) as ivm.Reference<unknown>
        try { await register.apply(undefined, [names[i], ns.derefInto()], { timeout: timeoutMs }) } finally { ns.release() }
      }
    } finally {
      register.release()
    }
  }
}

/** A built module's script source, by name. */
export function readBuilt (name: string): string {
  // The manifest names each module's file; a name not in it is not a module (never a path).
  const manifest = JSON.parse(readFileSync(MODULES_DIR + 'manifest.json', 'utf8')) as { modules: Array<{ name: string, script: string }> }
  const entry = manifest.modules.find((m) => m.name === name)
  if (entry === undefined) throw new Error(`sandbox module ${name} is not built`)
  return readFileSync(MODULES_DIR + entry.script, 'utf8')
}
