// The supervisor's record of one run, from admission to settlement: what every step of its life
// (placement, tool calls, a runner's messages and death) reads and updates.
import type { FairRun } from './cpu-fairness.ts'
import type { RunLimits } from '../protocol/messages.ts'
import type { Runner } from './runner-pool.ts'
import type { EnclaveEvent, EnclaveLogger, ExecutionResult, RunOptions, ToolHandler } from '../common/types.ts'

export interface PendingRun {
  wireId: string
  executionId: string
  key: string | undefined
  code: string
  limits: RunLimits
  started: number
  deadline: number
  tools: ToolHandler | undefined
  context: unknown
  fair: FairRun
  runner: Runner<PendingRun> | undefined
  /** Tool calls the runner forwarded for this run (the supervisor's own count). */
  toolCalls: number
  /** Calls the runner (or the isolate) refused before forwarding them, as it told us. */
  refusedCalls: number
  callIds: Set<number>
  attempts: number
  /** Its runner's resident memory when it was sent there: what it can have added is measured from it. */
  rssAtStartBytes: number | undefined
  /** Aborted when the run's result is known: tool calls still waiting are not started. */
  ended: AbortController
  /** Its runner died and nobody was blamed: its retry runs on the quarantine runner. */
  retryApart: boolean
  resolve: (result: ExecutionResult) => void
  onSettled: (() => void) | undefined
  /** Someone watches this run: its runner reports logs live, tool calls are reported here. */
  onEvent: ((event: EnclaveEvent) => void) | undefined
  onToolRefused: RunOptions['onToolRefused']
  replay: number[] | undefined
  onDrawn: RunOptions['onDrawn']
  /** Characters of live output the runner sent for it (checked against the console limit). */
  liveLogChars: number
  /** Cancelled while on a runner: the runner's done message will say CANCELLED. */
  cancelled: boolean
  backstop: NodeJS.Timeout | undefined
  done: boolean
  settled: boolean
}

export function newPendingRun (
  wireId: string, code: string, executionId: string, started: number, key: string | undefined, limits: RunLimits,
  options: RunOptions, fair: FairRun, resolve: (result: ExecutionResult) => void
): PendingRun {
  return {
    wireId,
    executionId,
    key,
    code,
    limits,
    started,
    deadline: started + limits.timeoutMs,
    tools: options.tools,
    context: options.context,
    fair,
    runner: undefined,
    toolCalls: 0,
    refusedCalls: 0,
    callIds: new Set(),
    attempts: 0,
    rssAtStartBytes: undefined,
    ended: new AbortController(),
    retryApart: false,
    resolve,
    onSettled: options.onSettled,
    onEvent: options.onEvent,
    onToolRefused: options.onToolRefused,
    replay: options.replay,
    onDrawn: options.onDrawn,
    liveLogChars: 0,
    cancelled: false,
    backstop: undefined,
    done: false,
    settled: false
  }
}

/** Tells whoever watches the run what just happened in it (never after its result is known). */
export function reportEvent (run: PendingRun, event: EnclaveEvent, logger: EnclaveLogger | undefined): void {
  if (run.onEvent === undefined || run.done) return
  try { run.onEvent(event) } catch (err) { logger?.error({ err }, 'onEvent failed') }
}

/** The bound of a run's record of drawn values, in characters of JSON (about 50 000 values). */
export const MAX_DRAWN_CHARS = 1 << 20

/** Hands the values a run drew (a JSON array from its runner) to its onDrawn. */
export function reportDrawn (run: PendingRun, drawn: string | undefined, logger?: EnclaveLogger): void {
  if (drawn === undefined || run.onDrawn === undefined) return
  if (drawn === 'lost') { try { run.onDrawn(null) } catch (err) { logger?.error({ err }, 'onDrawn failed') } return }
  let values: unknown
  try { values = JSON.parse(drawn) } catch { return }
  if (!Array.isArray(values) || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) return
  try { run.onDrawn(values as number[]) } catch (err) { logger?.error({ err }, 'onDrawn failed') }
}
