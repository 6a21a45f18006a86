// The supervisor's view of what a runner says. A runner runs tenants' code, so after an escape it
// could say anything: each message is checked against what that runner was given (its own
// executions, their limits, one reply per call id). A message that does not fit means the runner
// cannot be trusted any more; the caller kills and replaces it.
import { REFUSED_CALL_CODES, type ToMain } from '../protocol/messages.ts'
import type { PendingRun } from './pending-run.ts'
import type { Runner } from './runner-pool.ts'

const MAX_ID = 32
// 'lost' or the JSON of the values drawn, bounded by the run's recording cap (plus one value).
const MAX_DRAWN_CHARS = (1 << 20) + 64

const isCount = (x: unknown, max: number): boolean => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= max
const isString = (x: unknown, max: number): x is string => typeof x === 'string' && x.length <= max

/** null when the message is one this runner may send now, else what is wrong with it. */
export function checkRunnerMessage (runner: Runner<PendingRun>, msg: ToMain): string | null {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return 'not an object'
  const m = msg as unknown as Record<string, unknown>
  switch (m.t) {
    case 'ready':
      return isCount(m.pid, 2 ** 32) ? null : 'a ready message without a pid'
    case 'call': {
      const run = isString(m.id, MAX_ID) ? runner.inFlight.get(m.id) : undefined
      if (run === undefined) return 'a tool call for an execution it was not given'
      if (!isCount(m.c, 2 ** 31) || run.callIds.has(m.c as number)) return 'a tool call id that is not new'
      if (run.toolCalls >= run.limits.maxToolCalls) return 'more tool calls than the execution may make'
      if (!isString(m.n, 128) || !isString(m.a, run.limits.maxToolArgsBytes)) return 'a tool call over its bounds'
      if (m.r !== undefined && !isString(m.r, MAX_DRAWN_CHARS)) return 'drawn values over their bound'
      return null
    }
    case 'refused': {
      const run = isString(m.id, MAX_ID) ? runner.inFlight.get(m.id) : undefined
      if (run === undefined) return 'a refused tool call for an execution it was not given'
      // One per call the script made; a call refused is still a call (the limit counts it).
      if (run.refusedCalls + run.toolCalls > run.limits.maxToolCalls) return 'more tool calls than the execution may make'
      // An escaped name is at most 64 characters of 6 each, plus quotes and an ellipsis.
      if (typeof m.code !== 'string' || !REFUSED_CALL_CODES.has(m.code) || !isString(m.n, 400) || !isCount(m.b, 2 ** 31)) return 'a malformed refused tool call'
      return null
    }
    case 'done': {
      const run = isString(m.id, MAX_ID) ? runner.inFlight.get(m.id) : undefined
      if (run === undefined) return 'a result for an execution it was not given'
      const { maxOutputBytes, maxConsoleBytes, maxToolCalls } = run.limits
      if (typeof m.ok !== 'boolean' || !isCount(m.tc, maxToolCalls + 1)) return 'a malformed result'
      if (m.r !== undefined && !isString(m.r, MAX_DRAWN_CHARS)) return 'drawn values over their bound'
      if (m.v !== undefined && !isString(m.v, maxOutputBytes)) return 'a value over the output limit'
      if (!Array.isArray(m.l) || m.l.length > maxConsoleBytes + 1) return 'malformed logs'
      let logChars = 0
      for (const chunk of m.l) {
        if (typeof chunk !== 'string') return 'malformed logs'
        logChars += chunk.length
      }
      if (logChars > 2 * maxConsoleBytes + 2 * m.l.length) return 'logs over the console limit'
      if (m.e !== undefined && (typeof m.e !== 'object' || m.e === null || !isString((m.e as Record<string, unknown>).message, 65_536))) return 'a malformed error'
      return null
    }
    case 'log': {
      const run = isString(m.id, MAX_ID) ? runner.inFlight.get(m.id) : undefined
      if (run === undefined || run.onEvent === undefined) return 'output for an execution it was not given, or that nobody watches'
      if (!isString(m.l, 2 * run.limits.maxConsoleBytes + 2)) return 'output over the console limit'
      // Over the whole run too: the isolate's limit counts every line once.
      run.liveLogChars += m.l.length
      if (run.liveLogChars > 2 * run.limits.maxConsoleBytes + 2 * run.limits.maxToolCalls + 4) return 'output over the console limit'
      return null
    }
    case 'cpu':
      if (!Array.isArray(m.s) || m.s.length > runner.inFlight.size + runner.draining.size) return 'CPU samples for executions it was not given'
      for (const sample of m.s) {
        if (!Array.isArray(sample) || typeof sample[1] !== 'number' || !Number.isFinite(sample[1])) return 'a malformed CPU sample'
        if (!isString(sample[0], MAX_ID) || (!runner.inFlight.has(sample[0]) && !runner.draining.has(sample[0]))) return 'CPU samples for executions it was not given'
      }
      return null
    case 'pong':
      return isCount(m.n, 2 ** 31) && runner.pings?.has(m.n as number) === true ? null : 'a pong for no ping'
    case 'freed':
    case 'stuck':
      return isString(m.id, MAX_ID) && runner.draining.has(m.id) ? null : `'${m.t}' for an execution that is not draining`
    default:
      return 'an unknown message type'
  }
}
