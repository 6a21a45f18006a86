import { availableParallelism } from 'node:os'
import type { Piscina } from 'piscina'
import type { ScriptLanguage, StripOutcome } from './strip-types.ts'
import { runScriptTask, type ScriptTask, type ScriptTaskResult } from './script-worker.ts'

export interface ScriptPoolOptions {
  /** Scripts smaller than this (UTF-8 bytes) are handled on the calling thread. */
  inlineBelowBytes?: number
  maxThreads?: number
  /** Added to the threads' nice value (Linux, per thread): they yield the cores to the event loop. */
  niceIncrement?: number
}

// About a millisecond of stripping or parsing: cheaper inline than a message to a thread.
const INLINE_BELOW_BYTES = 16 * 1024

/** A pool task stopped at its time bound. */
export class ScriptTimeoutError extends Error {
  override name = 'ScriptTimeoutError'
  readonly timeoutMs: number
  constructor (timeoutMs: number, options?: { cause?: unknown }) {
    super(`The script task took longer than ${timeoutMs} ms`, options)
    this.timeoutMs = timeoutMs
  }
}

/**
 * Where type stripping and the pre-flight parse run. Small scripts are done inline; a large one
 * (up to maxCodeSizeKB, and parsing 500 KB takes a core a tenth of a second or more) goes to a
 * worker thread, so one tenant's big scripts cannot stall every request on the event loop.
 */
export class ScriptPool {
  private readonly inlineBelowBytes: number
  private readonly maxThreads: number
  private readonly niceIncrement: number
  private pool: Promise<Piscina> | undefined
  private closed = false

  constructor (options: ScriptPoolOptions = {}) {
    this.inlineBelowBytes = options.inlineBelowBytes ?? INLINE_BELOW_BYTES
    this.maxThreads = options.maxThreads ?? Math.max(1, Math.floor(availableParallelism() / 2))
    this.niceIncrement = options.niceIncrement ?? 0
  }

  /**
   * `timeoutMs` bounds a task on a thread, its wait for a thread included: past it the task is
   * aborted (its thread stopped) and run() rejects with a ScriptTimeoutError. Inline tasks are
   * about a millisecond and not bounded.
   */
  async run (task: ScriptTask, options: { timeoutMs?: number } = {}): Promise<ScriptTaskResult> {
    if (this.closed || Buffer.byteLength(task.code, 'utf8') < this.inlineBelowBytes) {
      // Inline, the task holds the event loop for its wall time, which on a busy machine is much
      // more than its CPU: that is what it costs everyone else.
      const started = performance.now()
      const result = runScriptTask(task)
      return Object.assign(result, { cpuMs: Math.max(result.cpuMs, performance.now() - started) })
    }
    const threads = await this.threads()
    if (options.timeoutMs === undefined) return await threads.run(task) as ScriptTaskResult
    const signal = AbortSignal.timeout(options.timeoutMs)
    try {
      return await threads.run(task, { signal }) as ScriptTaskResult
    } catch (err) {
      if (signal.aborted) throw new ScriptTimeoutError(options.timeoutMs, { cause: err })
      throw err
    }
  }

  /** The thread pool, made on the first large script (most starts never need one). */
  private async threads (): Promise<Piscina> {
    // Each thread loads the stripper's WebAssembly and the parser as it starts (script-worker.ts:
    // over a second of CPU on a busy machine), and the first is waited for before the first real
    // task, and one thread kept: a thread's start is then neither counted against that task's
    // time bound nor charged to its tenant. (A warm-up task that stripped nothing, as before, left
    // that load to the first real task.)
    this.pool ??= import('piscina').then(async ({ Piscina }) => {
      const pool = new Piscina({
        filename: new URL(import.meta.url.endsWith('.ts') ? './script-worker.ts' : './script-worker.js', import.meta.url).href,
        minThreads: 1,
        maxThreads: this.maxThreads,
        idleTimeout: 30_000,
        // Read by script-worker.ts as a thread starts (piscina's own niceIncrement needs a
        // native module this service does not ship).
        workerData: { niceIncrement: this.niceIncrement, warm: true }
      })
      await pool.run({ kind: 'analyze', code: 'return 1 as number', language: 'typescript', strict: true } satisfies ScriptTask)
      return pool
    })
    return await this.pool
  }

  /** TypeScript to JavaScript with positions kept (see stripTypes); JavaScript as it is. */
  async strip (code: string, language: ScriptLanguage): Promise<StripOutcome> {
    if (language !== 'typescript') return { ok: true, code }
    const result = await this.run({ kind: 'strip', code, language })
    return result.stripped ?? { ok: true, code }
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.pool !== undefined) await (await this.pool).destroy()
  }
}
