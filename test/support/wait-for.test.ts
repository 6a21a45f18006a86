// The helper every test waits with: it must return what it waited for, and fail loudly otherwise.
import t from 'tap'
import { waitFor } from './wait-for.ts'

t.test('returns the first truthy value of the condition', async (t) => {
  let calls = 0
  const value = await waitFor(() => ++calls === 3 && 'ready', { interval: 1 })
  t.equal(value, 'ready')
  t.equal(calls, 3, 'checked until it held, and no more')
})

t.test('awaits an async condition', async (t) => {
  let calls = 0
  t.same(await waitFor(async () => ++calls >= 2 ? { n: calls } : null, { interval: 1 }), { n: 2 })
})

t.test('a condition that never holds throws with the message', async (t) => {
  await t.rejects(waitFor(() => false, { timeout: 30, interval: 5, message: 'the runner is back' }),
    { message: /^waitFor timed out after 30 ms \(\d+ checks\): the runner is back$/ })
})

t.test('a throwing condition is retried, and its last error is the cause of the failure', async (t) => {
  let calls = 0
  t.equal(await waitFor(() => { if (++calls < 3) throw new Error('not yet'); return true }, { interval: 1 }), true)
  const failure = await waitFor(() => { throw new Error('still down') }, { timeout: 20, interval: 5 }).then(() => undefined, (e: unknown) => e)
  t.type(failure, Error)
  t.match((failure as Error).message, /^waitFor timed out after 20 ms \(\d+ checks\): condition$/)
  t.match((failure as Error).cause, { message: 'still down' })
})

t.test('a zero timeout checks once', async (t) => {
  let calls = 0
  await t.rejects(waitFor(() => { calls++; return 0 }, { timeout: 0 }), /timed out after 0 ms \(1 checks\)/)
  t.equal(calls, 1)
})
