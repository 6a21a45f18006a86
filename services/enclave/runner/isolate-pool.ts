import ivm from 'isolated-vm'
import { writeSync } from 'node:fs'
import type { PoolConfig } from '../protocol/messages.ts'
import { BOOTSTRAP_SOURCE } from './bootstrap.ts'
import { SNAPSHOT_TAKE_SOURCE, type ModuleSnapshot } from './module-snapshots.ts'

type Fn = (...args: unknown[]) => unknown

/** A fresh context whose bootstrap already ran; `init` and `deliver` are the only ways into it. */
export interface WarmContext {
  context: ivm.Context
  init: ivm.Reference<Fn>
  deliver: ivm.Reference<Fn>
}

export interface Slot {
  readonly id: string
  readonly isolate: ivm.Isolate
  key: string | undefined
  readonly memoryLimitMB: number
  /** Made from this snapshot: its contexts start with these sandbox modules evaluated. */
  readonly snapshot: ModuleSnapshot | undefined
  readonly boot: ivm.Script
  runs: number
  lastUsed: number
  disposed: boolean
  /** Execution id currently using this isolate, for crash attribution. */
  current: string | undefined
  /** The next context, prepared in the background; null if preparing failed. */
  next: Promise<WarmContext | null>
}

// A context that takes longer than this to prepare means the isolate is still busy with work a
// finished script left behind (e.g. a microtask loop): it is disposed, never reused.
const WARM_TIMEOUT_MS = 1000

/**
 * Isolates of one runner, kept per isolateKey so that consecutive runs of one tenant skip the
 * cost of a new isolate (~10 ms) and find a context already prepared (~1.5 ms). Isolates are
 * never handed to another key; idle ones are bounded per key and in all (LRU), and expire.
 */
export class IsolatePool {
  private readonly idle = new Map<string, Slot[]>() // pool key -> idle slots, oldest first; Map order = LRU keys
  private idleCount = 0
  private seq = 0
  private spare: Slot | undefined
  private spareTimer: NodeJS.Timeout | undefined
  private readonly sweeper: NodeJS.Timeout

  private readonly config: PoolConfig

  constructor (config: PoolConfig) {
    this.config = config
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, config.idleTtlMs / 2))
    this.sweeper.unref()
  }

  /**
   * An isolate for `key` (reused if one is idle), with a context being prepared; made from
   * `snapshot` when given (isolates of another snapshot, or of none, are other pools).
   */
  acquire (key: string | undefined, memoryLimitMB: number, snapshot?: ModuleSnapshot): { slot: Slot, reused: boolean } {
    if (key !== undefined) {
      const pk = poolKey(key, memoryLimitMB, snapshot)
      const list = this.idle.get(pk)
      if (list !== undefined && list.length > 0) {
        const slot = list.pop()!
        this.idleCount--
        if (list.length === 0) this.idle.delete(pk)
        return { slot, reused: true }
      }
    }
    if (snapshot !== undefined) return { slot: this.create(key, memoryLimitMB, snapshot), reused: false }
    // A spare was never used by anyone: binding it to this key shares nothing.
    const spare = this.spare
    if (spare !== undefined && spare.memoryLimitMB === memoryLimitMB && !spare.disposed) {
      this.spare = undefined
      this.scheduleSpare(memoryLimitMB)
      spare.key = key
      return { slot: spare, reused: false }
    }
    this.scheduleSpare(memoryLimitMB)
    return { slot: this.create(key, memoryLimitMB), reused: false }
  }

  /**
   * Back to the pool after a clean run (a new context is prepared), or disposed. `unused` is a
   * prepared context the run never entered, kept as it is.
   */
  release (slot: Slot, reusable: boolean, unused?: WarmContext): void {
    slot.current = undefined
    if (slot.disposed) return
    if (!reusable || slot.key === undefined || slot.runs >= this.config.maxRunsPerIsolate) {
      this.destroy(slot)
      return
    }
    slot.lastUsed = Date.now()
    slot.next = unused !== undefined ? Promise.resolve(unused) : this.warm(slot)
    const pk = poolKey(slot.key, slot.memoryLimitMB, slot.snapshot)
    let list = this.idle.get(pk)
    if (list === undefined) list = []
    else this.idle.delete(pk) // re-insert: most recently used keys last
    this.idle.set(pk, list)
    list.push(slot)
    this.idleCount++
    if (list.length > this.config.maxIdlePerKey) this.evict(pk, list)
    while (this.idleCount > this.config.maxIdle) {
      const [lruKey, lruList] = this.idle.entries().next().value as [string, Slot[]]
      this.evict(lruKey, lruList)
    }
  }

  destroy (slot: Slot): void {
    if (slot.disposed) return
    slot.disposed = true
    if (slot.key !== undefined) {
      const pk = poolKey(slot.key, slot.memoryLimitMB, slot.snapshot)
      const list = this.idle.get(pk)
      const i = list?.indexOf(slot) ?? -1
      if (list !== undefined && i >= 0) {
        list.splice(i, 1)
        this.idleCount--
        if (list.length === 0) this.idle.delete(pk)
      }
    }
    try { slot.isolate.dispose() } catch { /* already disposed */ }
  }

  private evict (pk: string, list: Slot[]): void {
    const victim = list.shift()
    if (victim === undefined) { this.idle.delete(pk); return }
    this.idleCount--
    if (list.length === 0) this.idle.delete(pk)
    victim.disposed = true
    try { victim.isolate.dispose() } catch { /* already disposed */ }
  }

  private create (key: string | undefined, memoryLimitMB: number, snapshot?: ModuleSnapshot): Slot {
    // The id says what the isolate was made from (opaque to clients; tests and metrics read it).
    const id = `${process.pid}:${++this.seq}${snapshot !== undefined ? `@${snapshot.id}` : ''}`
    const isolate = new ivm.Isolate({
      memoryLimit: memoryLimitMB,
      ...(snapshot !== undefined ? { snapshot: snapshot.blob } : {}),
      // V8 lost control of this isolate; ivm's advice is to end the process. Say which run did
      // it (synchronously: the process is about to die) so the supervisor can attribute it.
      onCatastrophicError: (message: string) => {
        try { writeSync(2, `ENCLAVE_CATASTROPHIC ${slot.current ?? '-'} ${String(message).replace(/\s+/g, ' ')}\n`) } catch {}
        process.abort()
      }
    })
    // A snapshot's contexts are bootstrapped already: the take script hands out what it made.
    const boot = isolate.compileScriptSync(snapshot !== undefined ? SNAPSHOT_TAKE_SOURCE : BOOTSTRAP_SOURCE, { filename: 'enclave:bootstrap' })
    const slot: Slot = {
      id,
      isolate,
      key,
      memoryLimitMB,
      snapshot,
      boot,
      runs: 0,
      lastUsed: Date.now(),
      disposed: false,
      current: undefined,
      next: Promise.resolve(null)
    }
    slot.next = this.warm(slot)
    return slot
  }

  /** Prepare the next context: create it and run the bootstrap, all on the isolate's thread. */
  private warm (slot: Slot): Promise<WarmContext | null> {
    let settled = false
    const watchdog = setTimeout(() => { if (!settled) this.destroy(slot) }, WARM_TIMEOUT_MS)
    const work = (async (): Promise<WarmContext | null> => {
      const context = await slot.isolate.createContext()
      const pair = await slot.boot.run(context, { reference: true, timeout: WARM_TIMEOUT_MS }) as ivm.Reference<Fn[]>
      const [init, deliver] = await Promise.all([
        pair.get(0, { reference: true }) as Promise<ivm.Reference<Fn>>,
        pair.get(1, { reference: true }) as Promise<ivm.Reference<Fn>>
      ])
      pair.release()
      return { context, init, deliver }
    })()
    return work.then((warm) => {
      settled = true
      clearTimeout(watchdog)
      if (slot.disposed) return null
      return warm
    }, () => {
      settled = true
      clearTimeout(watchdog)
      this.destroy(slot)
      return null
    })
  }

  // One never-used isolate kept ready, so a new key does not wait for isolate creation. Created
  // a little later: `new Isolate` blocks this thread for a few ms.
  private scheduleSpare (memoryLimitMB: number): void {
    if (this.spareTimer !== undefined) return
    this.spareTimer = setTimeout(() => {
      this.spareTimer = undefined
      if (this.spare !== undefined && !this.spare.disposed && this.spare.memoryLimitMB === memoryLimitMB) return
      if (this.spare !== undefined) this.destroy(this.spare)
      try { this.spare = this.create(undefined, memoryLimitMB) } catch { this.spare = undefined }
    }, 20)
    this.spareTimer.unref()
  }

  private sweep (): void {
    const cutoff = Date.now() - this.config.idleTtlMs
    for (const [pk, list] of [...this.idle]) {
      while (list.length > 0 && list[0].lastUsed < cutoff) this.evict(pk, list)
    }
  }
}

function poolKey (key: string, memoryLimitMB: number, snapshot: ModuleSnapshot | undefined): string {
  return `${memoryLimitMB}\u0000${snapshot?.id ?? ''}\u0000${key}`
}

/**
 * Heap in use once a run is over (its context released), which also checks that the isolate went
 * idle: a script can return while leaving work behind (a microtask loop). undefined when the
 * isolate cannot answer, or does not within `timeoutMs`: such an isolate is disposed, not reused.
 */
export function heapAfterRun (slot: Slot, warm: WarmContext | undefined, timeoutMs: number, then: (used: number | undefined) => void): void {
  if (warm !== undefined) {
    for (const ref of [warm.init, warm.deliver]) { try { ref.release() } catch { /* gone */ } }
    try { warm.context.release() } catch { /* gone */ }
  }
  let settled = false
  const settle = (used: number | undefined): void => {
    if (settled) return
    settled = true
    clearTimeout(deadline)
    then(used)
  }
  const deadline = setTimeout(() => settle(undefined), timeoutMs)
  slot.isolate.getHeapStatistics().then((heap) => settle(heap.used_heap_size + heap.externally_allocated_size), () => settle(undefined))
}
