import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitForOptions {
  /** Give up after this many ms (default 10 s). */
  timeout?: number
  /** Pause between checks in ms (default 20). */
  interval?: number
  /** What was awaited: the error says it when the wait fails. */
  message?: string
}

/**
 * Polls `condition` until it returns a truthy value, and returns that value. A condition that
 * throws counts as "not yet" (a dependency still reconnecting, say). When `timeout` passes first,
 * it throws, naming `message` and keeping the last error as `cause`, so a state that never comes
 * fails the test where it was awaited instead of letting it run on.
 */
export async function waitFor<T> (condition: () => T | Promise<T>, options: WaitForOptions = {}): Promise<T> {
  const { timeout = 10_000, interval = 20, message = 'condition' } = options
  const deadline = Date.now() + timeout
  let lastError: unknown
  for (let checks = 1; ; checks++) {
    try {
      const value = await condition()
      if (value) return value
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const error = new Error(`waitFor timed out after ${timeout} ms (${checks} checks): ${message}`)
      if (lastError !== undefined) error.cause = lastError
      throw error
    }
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())))
  }
}
