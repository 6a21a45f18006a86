// What becomes of the runs that were in a runner when it died. The run to blame is the one
// isolated-vm named, or the one alone in a runner that died of memory; it ends with its limit
// and its tenant is quarantined. The others are collateral: not their tenants' loss. A run that
// had made no tool call had no effect outside its isolate and is retried on another runner; one
// that had called tools cannot be replayed safely and ends RUNNER_CRASHED.
import { enclaveError, memoryLimitError, runnerCrashedError, timeoutError } from '../common/errors.ts'
import type { PendingRun } from './pending-run.ts'
import type { Runner } from './runner-pool.ts'
import type { ExecutionError } from '../common/types.ts'

/** A run killed with its runner is retried once elsewhere when it had made no tool call. */
const MAX_ATTEMPTS = 2
const MB = 1024 * 1024

/**
 * Whether the run alone in a runner stopped for its memory can have used that memory: the
 * runner's resident memory must have grown, since the run was sent there, by at least half its
 * own memory limit. Memory the runner still held from earlier runs (freed isolates' pages not
 * yet returned, a bomb's isolate just disposed) is not the run's: a `return 42` that meets it is
 * retried, never failed MEMORY_LIMIT_EXCEEDED. Unknown readings blame it, as before.
 */
function grewEnough (runner: Runner<PendingRun>, run: PendingRun): boolean {
  const now = runner.lastRssBytes
  if (now === undefined || run.rssAtStartBytes === undefined) return true
  return now - run.rssAtStartBytes >= (run.limits.memoryLimitMB * MB) / 2
}

export type CrashOutcome =
  | { run: PendingRun, fate: 'blamed', error: ExecutionError }
  /** `quarantine`: nobody was blamed, so the culprit may be among the retried: they go apart. */
  | { run: PendingRun, fate: 'retry', quarantine: boolean }
  | { run: PendingRun, fate: 'lost', error: ExecutionError }

export function crashOutcomes (runner: Runner<PendingRun>, reason: string | undefined, now: number): CrashOutcome[] {
  const inFlight = [...runner.inFlight.values()]
  const named = inFlight.filter((run) => runner.catastrophic.has(run.wireId))
  const ofMemory = runner.outOfMemory || reason?.startsWith('resident memory') === true
  const alone = named.length === 0 && ofMemory && inFlight.length === 1 && grewEnough(runner, inFlight[0]!)
  return inFlight.map((run): CrashOutcome => {
    const message = runner.catastrophic.get(run.wireId)
    if (message !== undefined || alone) {
      const timedOut = message !== undefined && /terminate/i.test(message) && !/memory/i.test(message) && run.deadline <= now
      return { run, fate: 'blamed', error: timedOut ? timeoutError(run.limits.timeoutMs) : memoryLimitError(run.limits.memoryLimitMB, '; the sandbox process was stopped') }
    }
    if (run.toolCalls === 0 && run.attempts < MAX_ATTEMPTS) return { run, fate: 'retry', quarantine: named.length === 0 && !alone }
    return { run, fate: 'lost', error: run.toolCalls > 0 ? runnerCrashedError() : enclaveError('INTERNAL_ERROR', 'The sandbox process stopped unexpectedly') }
  })
}
