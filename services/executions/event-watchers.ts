import type { StreamEvent } from '../../schemas/execution-event.ts'

type Watcher = (event: StreamEvent) => void

/** Who on this instance watches which execution's events: both event logs keep them this way. */
export class EventWatchers {
  private readonly byExecution = new Map<string, Set<Watcher>>()

  /** Adds a watcher; the function answered removes it (and the execution's entry with its last watcher). */
  add (executionId: string, onEvent: Watcher): () => void {
    let set = this.byExecution.get(executionId)
    if (set === undefined) { set = new Set(); this.byExecution.set(executionId, set) }
    set.add(onEvent)
    return () => {
      set.delete(onEvent)
      if (set.size === 0 && this.byExecution.get(executionId) === set) this.byExecution.delete(executionId)
    }
  }

  /** Whether anyone here watches the execution (so a notice for nobody is not even parsed). */
  has (executionId: string): boolean {
    return this.byExecution.has(executionId)
  }

  notify (executionId: string, event: StreamEvent): void {
    for (const watcher of this.byExecution.get(executionId) ?? []) watcher(event)
  }

  clear (): void {
    this.byExecution.clear()
  }
}
