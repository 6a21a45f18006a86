// The build's proof that a sandbox module works under the enclave's walls: it is loaded into a
// fresh context of a bare isolate after the very bootstrap runs get (Function and eval refuse,
// no WebAssembly, SharedArrayBuffer or Atomics), then a small real use of it runs there. A module
// that needs code generation or a missing global fails here, at build time, not in a tenant's run.
import ivm from 'isolated-vm'
import { BOOTSTRAP_SOURCE } from './bootstrap.ts'
import { IMPORT_FUNCTION, ModuleHost } from './sandbox-modules.ts'
import { SNAPSHOT_TAKE_SOURCE, snapshotScripts } from './module-snapshots.ts'

export type ModuleCheck =
  | { ok: true, heapBytes: number }
  | { ok: false, reason: string }

const MB = 1024 * 1024

/** `use` is the source of a function `(namespace) => unknown` exercising the module. */
export async function checkModuleUnderWalls (name: string, script: string, use: string | undefined): Promise<ModuleCheck> {
  const isolate = new ivm.Isolate({ memoryLimit: 128 })
  try {
    const host = new ModuleHost(() => script)
    const context = await isolate.createContext()
    const pair = await (await isolate.compileScript(BOOTSTRAP_SOURCE)).run(context, { reference: true, timeout: 5000 }) as ivm.Reference<unknown[]>
    const init = await pair.get(0, { reference: true }) as ivm.Reference<(...args: unknown[]) => void>
    const before = await isolate.getHeapStatistics()
    try {
      await host.load(isolate, context, [name], 5000)
    } catch (err) {
      return { ok: false, reason: explain('fails to load', err) }
    }
    const after = await isolate.getHeapStatistics()
    if (use !== undefined) {
      // Run as a script is: through the bootstrap's init, which reports how it ended.
      const outcome = new Promise<{ kind: string, payload: string }>((resolve) => {
        const send = new ivm.Callback((type: string, kind: string, payload: string) => { if (type === 'R') resolve({ kind, payload }) }, { ignored: true })
        const alarm = new ivm.Callback((code: string, message: string) => { resolve({ kind: 'e', payload: JSON.stringify({ message: `${code}: ${message}` }) }) })
        const config = JSON.stringify({ maxLog: 65536, maxOut: 65536, maxCalls: 0, maxArgs: 0, memBytes: 128 * MB })
        const source = `const m = await ${IMPORT_FUNCTION}(${JSON.stringify(name)})\nreturn (${use})(m)`
        init.apply(undefined, [send, alarm, config, source], { timeout: 5000 }).catch((err: unknown) => resolve({ kind: 'e', payload: JSON.stringify({ message: String(err) }) }))
      })
      const { kind, payload } = await outcome
      if (kind !== 'v') return { ok: false, reason: explain('fails its smoke use', new Error(String((JSON.parse(payload) as { message?: string }).message ?? payload))) }
    }
    return { ok: true, heapBytes: Math.max(0, after.used_heap_size - before.used_heap_size) }
  } finally {
    isolate.dispose()
  }
}

/**
 * The runners snapshot modules they are asked for (module-snapshots.ts). V8 ends the process when
 * it cannot build a context from a snapshot, so the build makes the snapshot of every module
 * first, builds a context from it, and imports each module there: a V8 that cannot fails here.
 * A snapshot that V8 refuses with an error only means runs evaluate that module: a warning.
 */
export async function checkModulesSnapshot (names: readonly string[], source: (name: string) => string): Promise<{ ok: true, bytes: number } | { ok: false, reason: string }> {
  let blob: ivm.ExternalCopy<ArrayBuffer>
  try {
    blob = ivm.Isolate.createSnapshot(snapshotScripts(names, source))
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) }
  }
  const isolate = new ivm.Isolate({ memoryLimit: 128, snapshot: blob })
  try {
    const context = await isolate.createContext()
    await (await isolate.compileScript(SNAPSHOT_TAKE_SOURCE)).run(context, { timeout: 5000 })
    const seen = await context.eval(`Promise.all(${JSON.stringify(names)}.map((name) => ${IMPORT_FUNCTION}(name).then((ns) => typeof ns)))`, { promise: true, copy: true, timeout: 5000 }) as string[]
    if (seen.some((type) => type !== 'object')) return { ok: false, reason: `a module is missing from its snapshot (${seen.join(', ')})` }
    return { ok: true, bytes: blob.copy().byteLength }
  } finally {
    isolate.dispose()
  }
}

function explain (what: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  if (/Code generation from strings is disabled/.test(message)) return `needs eval or Function (${what} in an isolate where code generation is refused: ${message})`
  if (/memory/i.test(message)) return `${what} within ${128 * MB / MB} MB: ${message}`
  return `${what} in a bare isolate under the enclave's walls: ${message}`
}
