// Calls into a run's isolate, counted until V8 returns from them: while any is out, the isolate's
// thread is running tenant code. A run that ends then (a timeout, a limit) cannot simply hand the
// isolate back; this says when the thread is free again, or that it is stuck.
import type ivm from 'isolated-vm'

/**
 * After a run ends while its isolate is still executing (a timeout, a limit), the isolate is
 * disposed; V8 stops it at its next interrupt check. Some builtins (a sort of long strings, say)
 * check rarely: if the isolate is still busy this long after, the runner reports it as stuck and
 * the supervisor takes the runner out of service.
 */
export const STUCK_AFTER_MS = 250

export interface EntryEvents {
  /** A call into the isolate threw (the memory limit, a disposed isolate...). */
  error: (err: unknown) => void
  /** The last call out returned after watchUntilFree. */
  freed: () => void
  /** Still busy STUCK_AFTER_MS after watchUntilFree. */
  stuck: () => void
}

export class IsolateEntries {
  private busy = 0
  private waitingForFree = false
  private stuckTimer: NodeJS.Timeout | undefined
  private readonly on: EntryEvents

  constructor (on: EntryEvents) {
    this.on = on
  }

  /** Calls into the isolate, counting the call until V8 returns from it. */
  enter (ref: ivm.Reference<(...args: unknown[]) => unknown>, args: unknown[]): void {
    this.busy++
    let entered: Promise<unknown>
    // Not applyIgnored: the tenant code this runs may hit the memory limit, and isolated-vm
    // reports that only to the caller.
    try { entered = ref.apply(undefined, args as never[]) } catch (err) { this.left(); this.on.error(err); return }
    entered.then(() => this.left(), (err: unknown) => { this.left(); this.on.error(err) })
  }

  /** Counts work done in the isolate by other means (evaluating a module) until it settles. */
  async around<T> (work: () => Promise<T>): Promise<T> {
    this.busy++
    try { return await work() } finally { this.left() }
  }

  /** Once the run has ended: true (and freed or stuck comes later) while a call is still out. */
  watchUntilFree (): boolean {
    if (this.busy === 0) return false
    this.waitingForFree = true
    this.stuckTimer = setTimeout(() => { if (this.waitingForFree) this.on.stuck() }, STUCK_AFTER_MS)
    return true
  }

  private left (): void {
    this.busy--
    if (this.busy === 0 && this.waitingForFree) {
      this.waitingForFree = false
      clearTimeout(this.stuckTimer)
      this.on.freed()
    }
  }
}
