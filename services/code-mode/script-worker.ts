// Runs in a worker thread of ScriptPool: type stripping and parsing of large scripts, off the
// API's event loop.
// The task types live here, not in script-pool.ts, so the pool imports the worker and not the
// other way round (no import cycle).
import { setPriority } from 'node:os'
import { isMainThread, workerData } from 'node:worker_threads'
import { analyzeScript, type ScriptAnalysis } from '../enclave/index.ts'
import { stripTypes, type ScriptLanguage, type StripOutcome } from './strip-types.ts'

export type ScriptTask =
  | { kind: 'strip', code: string, language: ScriptLanguage }
  | { kind: 'analyze', code: string, language: ScriptLanguage, strict: boolean, modules?: string[] }

/**
 * `stripped` when stripping failed or was all that was asked; otherwise the analysis. `cpuMs`:
 * what it held: on a worker, the thread's CPU time (not its wait for a thread); inline, the event
 * loop's time (ScriptPool).
 */
export type ScriptTaskResult = ({ stripped: StripOutcome, analysis?: undefined } | { analysis: ScriptAnalysis, stripped?: undefined }) & { cpuMs: number }

// A pool's threads may run at a lower priority than the event loop (ScriptPool's niceIncrement):
// Linux keeps a nice value per thread, and pid 0 is the calling one.
const settings = isMainThread ? undefined : workerData as { niceIncrement?: number, warm?: boolean } | null | undefined
const nice = settings?.niceIncrement ?? 0
if (nice > 0) {
  try { setPriority(0, Math.min(19, nice)) } catch { /* not permitted here: the thread runs at the process's priority */ }
}
// A pool's thread loads the TypeScript stripper (WebAssembly) and the parser as it starts, before
// it takes a task (piscina loads this module first): a thread started again after a task was
// stopped at its time bound would otherwise load them, over a second of CPU, inside the next
// task's bound, and niced on a busy machine that task could be stopped too, and so on.
if (settings?.warm === true) runScriptTask({ kind: 'analyze', code: 'return 1 as number', language: 'typescript', strict: true })

export default function work (task: ScriptTask): ScriptTaskResult {
  return runScriptTask(task)
}

/** The work itself, the same inline and in a worker. */
export function runScriptTask (task: ScriptTask): ScriptTaskResult {
  const before = process.threadCpuUsage()
  const result = scriptTask(task)
  const used = process.threadCpuUsage(before)
  return Object.assign(result, { cpuMs: (used.user + used.system) / 1000 })
}

function scriptTask (task: ScriptTask): { stripped: StripOutcome, analysis?: undefined } | { analysis: ScriptAnalysis, stripped?: undefined } {
  let code = task.code
  if (task.language === 'typescript') {
    const stripped = stripTypes(code)
    if (!stripped.ok || task.kind === 'strip') return { stripped }
    code = stripped.code
  }
  return task.kind === 'strip' ? { stripped: { ok: true, code } } : { analysis: analyzeScript(code, { strict: task.strict, ...(task.modules !== undefined ? { modules: task.modules } : {}) }) }
}
