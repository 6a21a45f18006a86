import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js'

// /mcp is stateless (a fresh server per POST), so what a client said in one POST and must still
// hold in the next lives here, per caller (tenant and user), in this process.

const LEVELS: LoggingLevel[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency']

/** The level each caller asked for with logging/setLevel; forgotten after `ttlMs` unused. */
export class LogLevels {
  private readonly levels = new Map<string, { level: LoggingLevel, at: number }>()

  private readonly ttlMs: number
  private readonly maxEntries: number

  constructor (ttlMs = 3_600_000, maxEntries = 10_000) {
    this.ttlMs = ttlMs
    this.maxEntries = maxEntries
  }

  set (caller: string, level: LoggingLevel): void {
    this.levels.delete(caller)
    if (this.levels.size >= this.maxEntries) this.levels.delete(this.levels.keys().next().value as string)
    this.levels.set(caller, { level, at: Date.now() })
  }

  /** Whether a message at `level` goes out to this caller (all do until it sets a level). */
  allows (caller: string, level: LoggingLevel): boolean {
    const entry = this.levels.get(caller)
    if (entry === undefined) return true
    if (Date.now() - entry.at > this.ttlMs) {
      this.levels.delete(caller)
      return true
    }
    return LEVELS.indexOf(level) >= LEVELS.indexOf(entry.level)
  }
}

/**
 * Runs in flight by (caller, JSON-RPC request id): a `notifications/cancelled` arrives in another
 * POST than the call it cancels, maybe at another instance, so it is passed to every instance
 * (pub/sub) by this key and finds the run where it is. Request ids are the client's, scoped by
 * the session id; the worst a clash does is cancel that same user's own run.
 */
export class RunningCalls {
  private readonly calls = new Map<string, AbortController>()

  static key (caller: string, requestId: string | number): string {
    return `${caller}\u0000${String(requestId)}`
  }

  /** Registers a call; the returned function forgets it (call it when the run ends). */
  add (caller: string, requestId: string | number, controller: AbortController): () => void {
    const key = RunningCalls.key(caller, requestId)
    this.calls.set(key, controller)
    return () => { if (this.calls.get(key) === controller) this.calls.delete(key) }
  }

  /** Cancels the call of that key if it runs here. */
  cancel (key: string): boolean {
    const controller = this.calls.get(key)
    controller?.abort()
    return controller !== undefined
  }

  get size (): number {
    return this.calls.size
  }
}
