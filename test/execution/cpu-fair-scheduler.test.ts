import t from 'tap'
import { CpuFairScheduler } from '../../services/execution/cpu-fair-scheduler.ts'

interface Result { cpuTime: number, duration: number, label: string }

// A run the test finishes by hand, reporting the CPU share it "used".
function manualRun (label: string, cpuShare: number) {
  let finish!: () => void
  const started = { value: false }
  const start = async (): Promise<Result> => {
    started.value = true
    await new Promise<void>((resolve) => { finish = resolve })
    return { cpuTime: cpuShare * 100, duration: 100, label }
  }
  return { start, started, finish: () => { finish() } }
}

const expired = (): Result => ({ cpuTime: 0, duration: 0, label: 'expired' })
const measure = (r: Result): Result => r
const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

async function makeCpuBound (scheduler: CpuFairScheduler, tenant: string): Promise<void> {
  for (let i = 0; i < 8; i++) {
    await scheduler.run(tenant, 10_000, async () => ({ cpuTime: 100, duration: 100, label: 'busy' }), expired, measure)
  }
}

t.test('a tenant waiting on I/O is never held back', async (t) => {
  const scheduler = new CpuFairScheduler({ cores: 2 })
  const runs = Array.from({ length: 5 }, (_, i) => manualRun(`io-${i}`, 0.01))
  const done = runs.map(async (run) => await scheduler.run('io', 10_000, run.start, expired, measure))
  await tick()
  t.same(runs.map((r) => r.started.value), [true, true, true, true, true])
  runs.forEach((r) => { r.finish() })
  await Promise.all(done)
})

t.test('a CPU-bound tenant gets cores - 1 lanes, in order; others are not affected', async (t) => {
  const scheduler = new CpuFairScheduler({ cores: 2 })
  await makeCpuBound(scheduler, 'noisy')
  t.ok((scheduler.snapshot('noisy')?.cpuShare ?? 0) > 0.9)

  const runs = Array.from({ length: 3 }, (_, i) => manualRun(`noisy-${i}`, 1))
  const done = runs.map(async (run) => await scheduler.run('noisy', 10_000, run.start, expired, measure))
  await tick()
  t.same(runs.map((r) => r.started.value), [true, false, false], 'one lane for the noisy tenant')
  t.same(scheduler.snapshot('noisy'), { running: 1, waiting: 2, cpuShare: scheduler.snapshot('noisy')?.cpuShare })

  const quiet = manualRun('quiet', 0.01)
  const quietDone = scheduler.run('quiet', 10_000, quiet.start, expired, measure)
  await tick()
  t.equal(quiet.started.value, true, 'another tenant starts at once')
  quiet.finish()
  await quietDone

  runs[0]?.finish()
  await done[0]
  await tick()
  t.same(runs.map((r) => r.started.value), [true, true, false], 'the next waiting run takes the lane')
  runs[1]?.finish()
  await done[1]
  await tick()
  t.equal(runs[2]?.started.value, true)
  runs[2]?.finish()
  t.equal((await done[2]).label, 'noisy-2')
})

t.test('time spent waiting counts against the run\'s timeout', async (t) => {
  const scheduler = new CpuFairScheduler({ cores: 2 })
  await makeCpuBound(scheduler, 'slow')
  const blocker = manualRun('blocker', 1)
  const blocked = scheduler.run('slow', 10_000, blocker.start, expired, measure)
  let remainingSeen = -1
  const waiting = scheduler.run('slow', 50, async (remaining) => { remainingSeen = remaining; return { cpuTime: 1, duration: 1, label: 'late' } }, expired, measure)
  // Real time has to pass here: the run's 50 ms must run out while it waits, and the scheduler
  // reads performance.now(). (With an injectable clock this becomes a clock step.)
  await new Promise((resolve) => setTimeout(resolve, 80))
  blocker.finish()
  await blocked
  t.equal((await waiting).label, 'expired', 'the whole timeout went on waiting')
  t.equal(remainingSeen, -1, 'the script never started')
})
