// Runs in a worker thread of ScriptPool: type stripping and parsing of large scripts, off the
// API's event loop.
import { analyzeScript } from '../enclave/index.ts'
import { stripTypes } from './strip-types.ts'
import type { ScriptTask, ScriptTaskResult } from './script-pool.ts'

export default function work (task: ScriptTask): ScriptTaskResult {
  return runScriptTask(task)
}

/** The work itself, the same inline and in a worker. */
export function runScriptTask (task: ScriptTask): ScriptTaskResult {
  let code = task.code
  if (task.language === 'typescript') {
    const stripped = stripTypes(code)
    if (!stripped.ok || task.kind === 'strip') return { stripped }
    code = stripped.code
  }
  return task.kind === 'strip' ? { stripped: { ok: true, code } } : { analysis: analyzeScript(code, { strict: task.strict }) }
}
