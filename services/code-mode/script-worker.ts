// Runs in a worker thread of ScriptPool: type stripping and parsing of large scripts, off the
// API's event loop.
// The task types live here, not in script-pool.ts, so the pool imports the worker and not the
// other way round (no import cycle).
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
