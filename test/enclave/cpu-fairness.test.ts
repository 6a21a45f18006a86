// CPU fairness decided from measured CPU, on a fake clock: nothing here waits for real time.
import t from 'tap'
import { CpuFairness } from '../../services/enclave/host/cpu-fairness.ts'

function setup (cores: number): { fair: CpuFairness, clock: { now: number }, started: string[] } {
  const clock = { now: 0 }
  return { fair: new CpuFairness(cores, () => clock.now), clock, started: [] }
}

t.test('a key alone may use every core; a new run counts as a core until measured', async (t) => {
  const { fair, started } = setup(2)
  const a = Array.from({ length: 3 }, () => fair.newRun('a'))
  a.forEach((run, i) => fair.admit(run, () => started.push(`a${i}`)))
  t.same(started, ['a0', 'a1'], 'two unmeasured runs fill two cores; the third waits')
  t.same(fair.snapshot('a'), { running: 2, waiting: 1, load: 2 })
})

t.test('with two keys, the busy one keeps cores - 1 and the other starts at once', async (t) => {
  const { fair, clock, started } = setup(2)
  const hogs = Array.from({ length: 60 }, () => fair.newRun('hog'))
  hogs.forEach((run, i) => fair.admit(run, () => started.push(`hog${i}`)))
  t.same(started, ['hog0', 'hog1'])
  clock.now = 20
  fair.sample(hogs[0], 20) // one core each
  fair.sample(hogs[1], 20)
  const bystander = fair.newRun('bystander')
  fair.admit(bystander, () => started.push('bystander'))
  t.same(started.at(-1), 'bystander', 'the bystander is not queued behind the hog')
  // Its history of cheap runs buys the hog nothing: only what its runs use now counts.
  fair.release(hogs[0])
  t.same(started.filter((s) => s.startsWith('hog')).length, 2, 'a freed core goes to the hog only while it is under its share')
  t.equal(fair.snapshot('hog')!.load, 1, 'one core: its share while another tenant has work')
})

t.test('runs that wait on tools stop counting once measured idle', async (t) => {
  const { fair, clock, started } = setup(2)
  const io = Array.from({ length: 10 }, () => fair.newRun('io'))
  fair.admit(fair.newRun('other'), () => started.push('other'))
  io.forEach((run, i) => fair.admit(run, () => started.push(`io${i}`)))
  t.equal(started.length, 2, 'other + the first io run')
  for (let step = 1; step <= 10; step++) {
    clock.now = step * 20
    for (const run of io) if (run.admitted) fair.sample(run, 0.5) // half a ms in 20 ms: waiting on a tool
  }
  t.equal(started.length, 11, 'all io runs started one after another as each proved idle')
  t.ok(fair.snapshot('io')!.load < 1)
})

t.test('a waiting run can withdraw; an idle key is forgotten', async (t) => {
  const { fair, started } = setup(1)
  const first = fair.newRun('k')
  const second = fair.newRun('k')
  fair.admit(first, () => started.push('first'))
  fair.admit(second, () => started.push('second'))
  fair.withdraw(second)
  fair.release(first)
  t.same(started, ['first'])
  t.equal(fair.snapshot('k'), undefined)
})

t.test('a tenant between two short runs still counts: the busy key keeps cores - 1 for a second', async (t) => {
  const { fair, clock, started } = setup(2)
  const quiet = fair.newRun('quiet')
  fair.admit(quiet, () => started.push('quiet'))
  clock.now = 5
  fair.release(quiet) // the quiet tenant is between runs now
  const hogs = Array.from({ length: 3 }, () => fair.newRun('hog'))
  hogs.forEach((run, i) => fair.admit(run, () => started.push(`hog${i}`)))
  t.same(started, ['quiet', 'hog0'], 'one core for the hog while the quiet tenant was active a moment ago')
  clock.now = 1200
  fair.sample(hogs[0], 1195) // a second later, the hog is alone: it may have both cores
  t.same(started, ['quiet', 'hog0', 'hog1'])
})
