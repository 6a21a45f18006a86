// One start of a queued run that may wait for approvals: the tool gateway, numbered by position,
// with the run's journal in front of it. Calls already in the record are answered from it (same
// tool and arguments, or the run ends REPLAY_DIVERGED) without reaching the tool, the daily quota
// or the audit again; a decided call runs live (approved) or throws APPROVAL_REJECTED; a gated
// call past the record with no grant left makes the start suspend: it and every other gated call
// of that moment are recorded pending, calls already running finish and are recorded, no answer
// reaches the script any more, and once nothing is in progress the isolate is ended.
import { EnclaveToolError, toolFailure, type EnclaveEvent, type ExecutionError, type ExecutionResult } from '../../enclave/index.ts'
import { enclaveError } from '../../enclave/index.ts'
import { formatMessage } from '../../errors/registry.ts'
import type { createToolGateway } from '../tool-gateway.ts'
import { ApprovalPending, callIdOf, emptyJournal, journalBytes, pendingCalls, sizeText, type JournalCall, type RunJournal } from './run-journal.ts'

type ToolGateway = ReturnType<typeof createToolGateway>

/**
 * A suspending start ends once no call is in progress and none came for this long: the calls a
 * script made in one turn (a Promise.all) reach the host one message each. One that comes later
 * is not lost: it was never answered, so the next start makes it again.
 */
const QUIET_MS = 50

// The isolate is stopped with this fatal error; its result is not the run's (the run waits).
const STOP_MESSAGE = 'The run waits for a decision on a gated tool call'

/** What a suspended start hands its caller: the journal to keep, and the events to send. */
export interface Suspension { journal: RunJournal, pending: JournalCall[] }

export type ReplayingGateway = ReturnType<typeof replayingGateway>

const HOLD = Symbol('hold')

/**
 * `maxJournalBytes`: the tenant's tier's bound on what a waiting run keeps (quotas.maxJournalBytes).
 */
export function replayingGateway (gateway: ToolGateway, previous: RunJournal | undefined, maxJournalBytes: number, mayAct?: Promise<boolean>) {
  const before = previous ?? emptyJournal()
  const known = before.calls.length
  const calls: JournalCall[] = before.calls.map((call) => ({ ...call }))
  const grants = before.grants.map((grant) => ({ ...grant }))
  let drawn: number[] | null = [...before.drawn]
  let position = 0
  let inProgress = 0
  let suspending = false
  let stopped: EnclaveToolError | undefined
  let quiet: NodeJS.Timeout | undefined
  /** A call ended the run (fatal): the run is over, nothing waits. */
  let ended = false
  /** Set once the run left its record: every later call ends it (nothing different runs live). */
  let divergence: EnclaveToolError | undefined
  const held: Array<(err: Error) => void> = []
  const idle: Array<() => void> = []
  // Isolate call ids (tool_call events) answered from the record: their events went out before.
  const replayedIds = new Set<number>()
  let logEvents = 0

  const hold = async (): Promise<never> => await new Promise<never>((_resolve, reject) => {
    if (stopped !== undefined) reject(stopped)
    else held.push(reject)
  })

  const tooLarge = (what: string): string => formatMessage('REPLAY_RECORD_TOO_LARGE', { limit: `${sizeText(maxJournalBytes)}, this tier's maxJournalBytes`, what })

  function stop (): void {
    const what = drawn === null ? 'Math.random and clock values' : journalBytes({ ...before, calls, drawn, grants }) > maxJournalBytes ? 'tool results' : undefined
    if (what !== undefined) ended = true
    stopped = what === undefined
      ? new EnclaveToolError('APPROVAL_REQUIRED', STOP_MESSAGE, { fatal: true })
      : new EnclaveToolError('REPLAY_RECORD_TOO_LARGE', tooLarge(what), { fatal: true })
    for (const reject of held.splice(0)) reject(stopped)
  }

  /** A suspending start stops once nothing is in progress and no call came for QUIET_MS. */
  function stopWhenQuiet (): void {
    if (!suspending || inProgress > 0 || stopped !== undefined || quiet !== undefined) return
    const at = position
    quiet = setTimeout(() => {
      quiet = undefined
      if (inProgress > 0) return // its end asks again
      if (position !== at) stopWhenQuiet()
      else stop()
    }, QUIET_MS)
  }

  function diverged (p: number, actual: string, recorded: string): EnclaveToolError {
    ended = true
    divergence ??= new EnclaveToolError('REPLAY_DIVERGED', formatMessage('REPLAY_DIVERGED', { position: p, actual, recorded }), { fatal: true })
    return divergence
  }

  async function callOne (p: number, name: string, args: unknown, runEnded: AbortSignal | undefined): Promise<unknown> {
    if (divergence !== undefined) throw divergence
    const argsJson = JSON.stringify(args ?? null)
    let entry = p < known ? calls[p] : undefined
    if (entry !== undefined) {
      if (entry.tool !== name || entry.argsJson !== argsJson) {
        const sameTool = entry.tool === name
        throw diverged(p, sameTool ? `${name} with ${clip(argsJson)}` : name, sameTool ? `${name} with ${clip(entry.argsJson)}` : entry.tool)
      }
      const { outcome, decision } = entry
      if (outcome !== undefined) {
        if (outcome.ok) return outcome.value
        throw new EnclaveToolError(outcome.code as ExecutionError['code'], outcome.message)
      }
      if (decision?.approve === false) {
        const message = formatMessage('APPROVAL_REJECTED', { callId: entry.callId, tool: name, position: p, reason: decision.reason === undefined ? '' : `: ${decision.reason}` })
        entry.outcome = { ok: false, code: 'APPROVAL_REJECTED', message }
        gateway.refused({ tool: name, code: 'APPROVAL_REJECTED', argsBytes: Buffer.byteLength(argsJson) }, p)
        throw new EnclaveToolError('APPROVAL_REJECTED', message)
      }
    } else {
      entry = { position: p, callId: callIdOf(p), tool: name, argsJson }
      calls[p] = entry
    }
    const call = entry
    const gate = (): boolean => {
      if (call.decision?.approve === true) return true
      const grant = grants.find((g) => g.tool === name && g.remaining > 0)
      if (grant === undefined) return false
      grant.remaining--
      call.decision = { approve: true, by: grant.by, at: new Date().toISOString() }
      return true
    }
    try {
      const value = await gateway.callAt(p, name, args, runEnded, gate)
      call.outcome = { ok: true, value }
      return value
    } catch (err) {
      if (err instanceof ApprovalPending) {
        suspending = true
        return HOLD
      }
      const { e, f } = toolFailure(err)
      if (f === true) ended = true
      else call.outcome = { ok: false, code: e.code, message: e.message }
      throw err
    }
  }

  const callTool = async (name: string, args: unknown, _context?: unknown, runEnded?: AbortSignal): Promise<unknown> => {
    if (stopped !== undefined) return await hold()
    const p = position++
    inProgress++
    let answer: unknown
    try {
      // Nothing leaves the run before it may act (the worker's mark); numbered before, in order.
      if (mayAct !== undefined && !await mayAct) throw new Error('The execution did not start: it ended before it could act')
      answer = await callOne(p, name, args, runEnded)
    } catch (err) {
      if (!suspending || ended) throw err
    } finally {
      inProgress--
      if (inProgress === 0) for (const resolve of idle.splice(0)) resolve()
      stopWhenQuiet()
    }
    // Once the start suspends, no answer reaches the script: it stops where it is.
    if (answer === HOLD || suspending) return await hold()
    return answer
  }

  /** A call the sandbox refused: it takes its position; audited only the first time it happens. */
  const refused = (call: { tool: string, code: string, argsBytes: number }): void => {
    if (stopped !== undefined) return
    const p = position++
    if (p < known) {
      // A sandbox refusal is recorded with no arguments ('' is no call's JSON).
      const recorded = calls[p]!
      if (recorded.argsJson !== '' || recorded.tool !== call.tool) diverged(p, `${call.tool} (refused in the sandbox)`, recorded.tool)
      return
    }
    calls[p] = { position: p, callId: callIdOf(p), tool: call.tool, argsJson: '', outcome: { ok: false, code: call.code, message: 'refused in the sandbox' } }
    gateway.refused(call, p)
    stopWhenQuiet()
  }

  /** The enclave's onDrawn: what this start drew live, after the values it replayed. */
  const onDrawn = (values: number[] | null): void => {
    if (values === null) drawn = null
    else drawn?.push(...values)
  }

  /**
   * Whether an event of this start goes out: console lines and tool calls an earlier start
   * already sent do not, nor the stop of a suspending start. Called before the call it announces.
   */
  const showEvent = (event: EnclaveEvent): boolean => {
    if (event.type === 'log') return logEvents++ >= before.logLines
    if (event.type === 'tool_call') {
      const next = calls[position]
      if (position >= known || next === undefined) return true
      if (next.outcome !== undefined) replayedIds.add(event.index)
      return false
    }
    if (replayedIds.has(event.index)) return false
    return !(stopped !== undefined && event.code === stopped.code)
  }

  /**
   * After the enclave's answer: the journal to keep when the start suspended, or the error the
   * run ends with instead (its record too large to keep); nothing when the run ended. A script
   * that returned (or threw) with a call still waiting suspends too: that call has not happened,
   * and the next start makes it before it returns the same way again.
   */
  const finish = async (result: ExecutionResult): Promise<{ suspension?: Suspension, error?: ExecutionError }> => {
    if (!suspending || ended) return {}
    // Calls still running finish and are recorded (a call without an outcome reads as pending).
    if (inProgress > 0) await new Promise<void>((resolve) => { idle.push(resolve) })
    if (ended) return {}
    const stoppedHere = stopped !== undefined && result.error?.code === stopped.code
    if (!stoppedHere && !result.success && result.error?.code !== 'EXECUTION_ERROR') return {}
    clearTimeout(quiet)
    if (stopped === undefined) stop()
    const journal: RunJournal = { version: 1, calls, drawn: drawn ?? [], logLines: result.logs.length, grants, starts: before.starts + 1 }
    if (drawn === null || journalBytes(journal) > maxJournalBytes) {
      const what = drawn === null ? 'Math.random and clock values' : 'tool results'
      return { error: enclaveError('REPLAY_RECORD_TOO_LARGE', tooLarge(what)) }
    }
    return { suspension: { journal, pending: pendingCalls(journal) } }
  }

  return Object.assign(callTool, { settle: gateway.settle, refused, callAt: gateway.callAt, onDrawn, showEvent, finish, replay: before.drawn })
}

const clip = (json: string): string => json.length > 200 ? `${json.slice(0, 200)}…` : json
