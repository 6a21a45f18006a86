import { availableParallelism } from 'node:os'
import type { Piscina } from 'piscina'
import type { ScriptLanguage, StripOutcome } from './strip-types.ts'
import { runScriptTask, type ScriptTask, type ScriptTaskResult } from './script-worker.ts'

export interface ScriptPoolOptions {
  /** Scripts smaller than this (UTF-8 bytes) are handled on the calling thread. */
  inlineBelowBytes?: number
  maxThreads?: number
}

// About a millisecond of stripping or parsing: cheaper inline than a message to a thread.
const INLINE_BELOW_BYTES = 16 * 1024

/**
 * Where type stripping and the pre-flight parse run. Small scripts are done inline; a large one
 * (up to maxCodeSizeKB, and parsing 500 KB takes a core a tenth of a second or more) goes to a
 * worker thread, so one tenant's big scripts cannot stall every request on the event loop.
 */
export class ScriptPool {
  private readonly inlineBelowBytes: number
  private readonly maxThreads: number
  private pool: Promise<Piscina> | undefined
  private closed = false

  constructor (options: ScriptPoolOptions = {}) {
    this.inlineBelowBytes = options.inlineBelowBytes ?? INLINE_BELOW_BYTES
    this.maxThreads = options.maxThreads ?? Math.max(1, Math.floor(availableParallelism() / 2))
  }

  async run (task: ScriptTask): Promise<ScriptTaskResult> {
    if (this.closed || Buffer.byteLength(task.code, 'utf8') < this.inlineBelowBytes) return runScriptTask(task)
    return await (await this.threads()).run(task) as ScriptTaskResult
  }

  /** The thread pool, made on the first large script (most starts never need one). */
  private async threads (): Promise<Piscina> {
    this.pool ??= import('piscina').then(({ Piscina }) => new Piscina({
      filename: new URL(import.meta.url.endsWith('.ts') ? './script-worker.ts' : './script-worker.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: this.maxThreads,
      idleTimeout: 30_000
    }))
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
