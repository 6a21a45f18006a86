// The record one queued run keeps between its starts while it waits for approvals: every tool call
// it made (by position), what each returned or threw, the decisions on the gated ones, the values
// it drew from Math.random and the clock, and how many console lines it already printed. A start
// replays it from the beginning (replaying-gateway.ts) and so reaches the decided calls with the
// same state it had when it stopped. Stored between starts by the run's owner (the worker) as JSON.

/** One tool call of a run, by its position (the gateway's callIndex: 0, 1, 2 … in the order the script made calls). */
export interface JournalCall {
  position: number
  /** `call-<position>`: the id the API, events and decisions use. */
  callId: string
  tool: string
  /** JSON.stringify(args ?? null) exactly as the gateway saw them: replay compares this string. */
  argsJson: string
  /** Settled calls (live or refused): what replay returns/throws without calling the tool. */
  outcome?: { ok: true, value: unknown } | { ok: false, code: string, message: string }
  /** Gated calls only: undefined while pending; set by POST …/approvals or by a grant (replay). */
  decision?: { approve: boolean, reason?: string, by: string, at: string }
}

export interface RunJournal {
  version: 1
  /** Every call the run made, position order; a gated call with no decision and no outcome is pending. */
  calls: JournalCall[]
  /** Math.random / Date.now / new Date() / performance.now values drawn, in order. */
  drawn: number[]
  /** Console lines (logs) already emitted by earlier starts: replay suppresses this many. */
  logLines: number
  /** approveAll+forTool+maxCalls: further calls of `tool` approved without suspending (decremented by replay, recorded in decision.by as the grant's decider). */
  grants: Array<{ tool: string, remaining: number, by: string }>
  /** How many times the run has started (1 on the first suspension). */
  starts: number
}

/**
 * A journal's size as it is kept and charged to the tenant's storage: the UTF-8 bytes of its
 * JSON (what PostgreSQL stores in execution_journals.journal). Past the tier's maxJournalBytes
 * the run ends REPLAY_RECORD_TOO_LARGE instead of waiting.
 */
export const journalBytes = (journal: RunJournal): number => Buffer.byteLength(JSON.stringify(journal))

/** A byte count as the messages show it (MiB when whole, else KiB or bytes). */
export function sizeText (bytes: number): string {
  const MiB = 1024 * 1024
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`
  return `${bytes} bytes`
}

export const callIdOf = (position: number): string => `call-${position}`

/** Calls waiting for a decision: gated, with no decision and no outcome. */
export const pendingCalls = (journal: RunJournal): JournalCall[] =>
  journal.calls.filter((call) => call.decision === undefined && call.outcome === undefined)

export const emptyJournal = (): RunJournal => ({ version: 1, calls: [], drawn: [], logLines: 0, grants: [], starts: 0 })

/**
 * Thrown by a gated call that must wait (no decision, no grant): the gateway gives back the call's
 * daily tool unit and its place among the run's calls in progress; the call never reaches its tool.
 */
export class ApprovalPending extends Error {
  constructor () { super('The call waits for a decision') }
}
