// A run's journal: what a run that waits for approval did before it stopped, so a later start
// replays it (the gateway returns the recorded outcomes, the isolate the recorded drawn values)
// and goes on live only past the record. The replay engine reads and extends it inside a start;
// the run flow keeps it between starts (journal-store.ts) and records the decisions on it.

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
  /** Gated calls only: undefined while pending; set by POST …/approvals (flow) or by a grant (replay). */
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

/** Calls with no decision and no outcome: those a person has yet to decide. */
export const pendingCalls = (journal: RunJournal): JournalCall[] =>
  journal.calls.filter((call) => call.decision === undefined && call.outcome === undefined)
