// The queue worker's watchdog (services/executions/queue-watchdog.ts), on a clock of its own: a
// worker that runs no job and took nothing for the threshold while jobs wait is recreated, once
// per wait, the next wait twice as long (bounded); an idle queue, a worker running a job or one that takes
// jobs is left alone, and a job taken brings the wait back to its start.
import t, { type Test } from 'tap'
import { startQueueWatchdog } from '../../services/executions/queue-watchdog.ts'
import { waitFor } from '../support/wait-for.ts'

function rig (t: Test, state: { pending: boolean, idle: boolean }) {
  let clock = 1_000_000
  let taken = 0
  const warnings: Array<Record<string, unknown>> = []
  const watchdog = startQueueWatchdog({
    checkEveryMs: 2,
    stuckAfterMs: 10_000,
    maxBackoffMs: 30_000,
    idle: () => state.idle,
    lastTakenAt: () => taken,
    pending: async () => state.pending,
    recreate: () => {},
    log: { warn: (obj) => { warnings.push(obj) } },
    now: () => clock
  })
  t.teardown(watchdog.stop)
  const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 30)) }
  return {
    watchdog,
    warnings,
    advance: (ms: number) => { clock += ms },
    take: () => { taken = clock },
    /** Lets the watchdog look a few times at the present clock. */
    settle,
    /** `ms` go by on the watchdog's clock, and it looks a few times. */
    passes: async (ms: number) => { clock += ms; await settle() }
  }
}

t.test('a stuck worker is recreated, bounded, and a taken job resets the wait', async (t) => {
  const state = { pending: true, idle: true }
  const r = rig(t, state)
  await r.passes(9_000)
  t.equal(r.watchdog.recreations, 0, 'not before the threshold')
  r.advance(1_000)
  await waitFor(() => r.watchdog.recreations === 1, { message: 'recreated at the threshold' })
  await r.settle()
  t.equal(r.watchdog.recreations, 1, 'once')
  t.match(r.warnings[0], { idleMs: 10_000, recreations: 1 }, 'logged')
  await r.passes(10_000)
  t.equal(r.watchdog.recreations, 1, 'a recreation that did not help is not repeated after the same wait')
  r.advance(10_000)
  await waitFor(() => r.watchdog.recreations === 2, { message: 'but after twice as long' })
  r.advance(30_000)
  await waitFor(() => r.watchdog.recreations === 3, { message: 'the wait is bounded' })
  r.advance(30_000)
  await waitFor(() => r.watchdog.recreations === 4, { message: 'at its bound' })
  r.take()
  r.advance(10_000)
  await waitFor(() => r.watchdog.recreations === 5, { message: 'a job taken brings the wait back to its start' })
})

t.test('an idle queue, a worker running a job, or one that takes jobs is left alone', async (t) => {
  const state = { pending: false, idle: true }
  const r = rig(t, state)
  await r.passes(60_000)
  t.equal(r.watchdog.recreations, 0, 'nothing waits')
  state.pending = true
  state.idle = false
  await r.settle()
  t.equal(r.watchdog.recreations, 0, 'it runs a job')
  state.idle = true
  r.take()
  await r.passes(5_000)
  t.equal(r.watchdog.recreations, 0, 'it took a job lately')
})
