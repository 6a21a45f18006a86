// V8 start-up snapshots of "a context after the bootstrap, with these sandbox modules evaluated",
// so that a run importing zod finds zod already evaluated instead of running its start-up code.
//
// Why this is per run and still shares nothing: isolated-vm builds every context of an isolate
// made from a snapshot by deserializing the snapshot's context afresh. Each run gets its own copy
// of the modules' objects (a run that patches zod patches its copy only), and the isolates are
// kept per tenant as always. Deserializing zod's heap costs about a third of evaluating it, and
// happens while the pool prepares the next context, off the run's path.
//
// What V8 does not keep, and what this file therefore redoes in every context: features it
// installs after deserializing (WebAssembly and SharedArrayBuffer come back on the global, which
// the bootstrap removes). The snapshot records which globals the bootstrap removed, and the take
// script removes those and V8's additions again before anything else runs. Atomics must even be
// put back before the snapshot is serialized: V8 cannot build a context from a snapshot whose
// global lacks it (it aborts the process). test/sandbox-modules/snapshots.test.ts checks that a
// snapshot context offers exactly the globals of a plain one.
//
// Order inside the snapshot is the order of a run that loads modules: bootstrap (walls up), then
// each module, so what a module captures at evaluation is already walled, as before.
//
// A snapshot holds exactly the modules one run imports (the set, in name order), never others:
// a tenant narrowed away from a module cannot meet it in an isolate made for its runs.
// isolated-vm's createSnapshot is synchronous and takes 50-150 ms; the runner may not start
// worker threads (its permission model), so snapshots are made while the runner has no run
// (makeOne), and runs before that load their modules the old way (sandbox-modules.ts).
import ivm from 'isolated-vm'
import { BOOTSTRAP_SOURCE } from './bootstrap.ts'
import { INSTALLER, readBuilt } from './sandbox-modules.ts'

/** Where the snapshot leaves what a context needs until the take script picks it up. */
const STASH = '__enclaveSnapshot'

/** Globals V8 installs in every context it deserializes, which the bootstrap removes. */
const REINSTALLED = ['WebAssembly', 'SharedArrayBuffer']

export interface ModuleSnapshot {
  /** The modules, in name order, joined by '+': part of the pool's key. */
  readonly id: string
  readonly blob: ivm.ExternalCopy<ArrayBuffer>
}

/** Snapshots kept by one runner: each holds a bootstrap and a few modules (0.5-3 MB). */
const MAX_SNAPSHOTS = 8

/**
 * Below this memory limit, runs load their modules the old way. An isolate made from a snapshot
 * holds a second copy of its modules (isolated-vm's own default context is made from the
 * snapshot too), and old-space garbage of the contexts before: zod and lodash-es at 8 MB then
 * ended over the limit in 3 runs of 150, where evaluating them in each run never did.
 */
export const MIN_SNAPSHOT_MEMORY_MB = 16

/**
 * Run once in every context of a snapshotted isolate, before anything else: takes the
 * bootstrap's `[init, deliver]` from the stash, removes the stash and the globals V8 put back.
 * Its completion value is the bootstrap's, so the pool treats it as the bootstrap.
 */
export const SNAPSHOT_TAKE_SOURCE = `(function () {
'use strict'
const G = globalThis
const stash = G.${STASH}
Reflect.deleteProperty(G, '${STASH}')
for (const key of stash.removed) Reflect.deleteProperty(G, key)
for (const key of ${JSON.stringify(REINSTALLED)}) Reflect.deleteProperty(G, key)
return stash.pair
})()`

/** The scripts a snapshot is made of: the bootstrap and installer, each module, the wrap-up. */
export function snapshotScripts (names: readonly string[], source: (name: string) => string): Array<{ code: string, filename: string }> {
  const start = `(function () {
'use strict'
const G = globalThis
const before = Reflect.ownKeys(G)
const saved = Object.getOwnPropertyDescriptors(G)
const pair = ${BOOTSTRAP_SOURCE}
const removed = before.filter((key) => Reflect.getOwnPropertyDescriptor(G, key) === undefined)
const register = ${INSTALLER}
Object.defineProperty(G, '${STASH}', { value: { pair, register, removed, saved }, configurable: true })
})()`
  const end = `(function () {
'use strict'
const stash = globalThis.${STASH}
for (const key of stash.removed) Object.defineProperty(globalThis, key, stash.saved[key])
delete stash.register
delete stash.saved
})()`
  return [
    { code: start, filename: 'enclave:bootstrap' },
    ...names.map((name) => ({ code: `globalThis.${STASH}.register(${JSON.stringify(name)}, ${source(name)})`, filename: `sandbox-module:${name}` })),
    { code: end, filename: 'enclave:snapshot' }
  ]
}

/** The id of a set of modules: one snapshot per distinct set. */
export function snapshotId (names: readonly string[]): string {
  return [...new Set(names)].sort().join('+')
}

export class ModuleSnapshots {
  private readonly ready = new Map<string, ModuleSnapshot>() // LRU: most recently used last
  private readonly wanted = new Set<string>()
  private readonly failed = new Set<string>()
  private readonly source: (name: string) => string
  private readonly max: number

  constructor (source: (name: string) => string = readBuilt, max = MAX_SNAPSHOTS) {
    this.source = source
    this.max = max
  }

  /**
   * The snapshot of exactly these modules for a run with this memory limit, or undefined (it is
   * then made when the runner is idle, unless the limit is below MIN_SNAPSHOT_MEMORY_MB).
   */
  get (names: readonly string[], memoryLimitMB: number): ModuleSnapshot | undefined {
    if (memoryLimitMB < MIN_SNAPSHOT_MEMORY_MB) return undefined
    const id = snapshotId(names)
    const snapshot = this.ready.get(id)
    if (snapshot !== undefined) {
      this.ready.delete(id)
      this.ready.set(id, snapshot)
      return snapshot
    }
    if (!this.failed.has(id)) this.wanted.add(id)
    return undefined
  }

  /**
   * Makes one wanted snapshot; blocks this thread while V8 builds it. Returns whether more are
   * wanted. A set that cannot be snapshotted is remembered and loaded the old way from then on.
   */
  makeOne (): boolean {
    const id = this.wanted.values().next().value
    if (id === undefined) return false
    this.wanted.delete(id)
    try {
      const blob = ivm.Isolate.createSnapshot(snapshotScripts(id.split('+'), this.source))
      this.ready.set(id, { id, blob })
      while (this.ready.size > this.max) {
        // Isolates made from an evicted snapshot keep their own reference to its blob.
        const [oldest] = this.ready.keys()
        this.ready.delete(oldest)
      }
    } catch (err) {
      this.failed.add(id)
      process.stderr.write(`enclave runner: no snapshot for sandbox modules ${id} (they are evaluated in each run instead): ${err instanceof Error ? err.message : String(err)}\n`)
    }
    return this.wanted.size > 0
  }
}

/** This runner's snapshots (one store per process, as the modules' compiled scripts). */
export const moduleSnapshots = new ModuleSnapshots()
