// Hostile round 3: the memory watch blamed a bystander. A free tenant's `return 42`, alone in a
// runner that still held the memory of six enterprise bombs just ended, was failed
// MEMORY_LIMIT_EXCEEDED ("the sandbox process was stopped"). A run alone in a runner stopped for
// its memory is blamed only when the runner grew by a good part of its own limit since it came.
import t from 'tap'
import { crashOutcomes } from '../../services/enclave/host/runner-crash.ts'
import type { PendingRun } from '../../services/enclave/host/pending-run.ts'
import type { Runner } from '../../services/enclave/host/runner-pool.ts'

const MB = 1024 * 1024

function scene (rssAtStartMB: number | undefined, rssNowMB: number | undefined, memoryLimitMB = 32, toolCalls = 0) {
  const run = { wireId: 'w1', executionId: 'e1', toolCalls, attempts: 1, rssAtStartBytes: rssAtStartMB === undefined ? undefined : rssAtStartMB * MB, limits: { memoryLimitMB, timeoutMs: 5000 }, deadline: Number.POSITIVE_INFINITY } as unknown as PendingRun
  const runner = { inFlight: new Map([[run.wireId, run]]), catastrophic: new Map<string, string>(), outOfMemory: false, lastRssBytes: rssNowMB === undefined ? undefined : rssNowMB * MB } as unknown as Runner<PendingRun>
  return crashOutcomes(runner, 'resident memory 900 MB over its budget of 320 MB', 0)
}

t.test('a run that cannot have used the memory is retried, not failed', async (t) => {
  // The runner held 895 MB when the `return 42` came (the bombs' memory), 900 MB when stopped.
  const [outcome] = scene(895, 900)
  t.equal(outcome?.fate, 'retry', 'the bystander is retried elsewhere')
})

t.test('a run that grew the runner by its own limit is still blamed', async (t) => {
  const [outcome] = scene(250, 900, 256)
  t.equal(outcome?.fate, 'blamed')
  t.match(outcome, { error: { code: 'MEMORY_LIMIT_EXCEEDED' } })
})

t.test('a bystander that had called tools is not blamed either: RUNNER_CRASHED, not its memory', async (t) => {
  const [outcome] = scene(895, 900, 32, 1)
  t.equal(outcome?.fate, 'lost')
  t.match(outcome, { error: { code: 'RUNNER_CRASHED' } })
})

t.test('without readings the run alone is blamed, as before', async (t) => {
  t.equal(scene(undefined, 900)[0]?.fate, 'blamed')
})
