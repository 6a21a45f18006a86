// POST /api/executions/:id/approvals: a person's decisions on a waiting run's pending calls,
// recorded on its journal and in approval_decisions (with the decider) in one tenant
// transaction that holds the journal's row, so two deciders at once see each other's
// decisions. Once no call is pending the run starts again (a new job of the same execution).
import { withTenant } from '../../db/with-tenant.ts'
import { ServiceError } from '../../errors/index.ts'
import { firstDue, type RunRecord } from '../execution-records.ts'
import { getExecution } from '../execution-repository.ts'
import type { QueuedExecutionsDeps } from '../queued-executions-deps.ts'
import { readJournal, writeJournal } from './journal-store.ts'
import { pendingCalls, type JournalCall, type RunJournal } from './run-journal.ts'
import { waitingEventsTtlMs, waitingRecordTtlMs } from './waiting-runs.ts'
import { giveWaitingPlaceBack, keepWaitingPlace } from './waiting-places.ts'

export type DecisionRequest =
  | { decisions: Array<{ callId: string, approve: boolean, reason?: string }> }
  | { approveAll: true, forTool?: string, maxCalls?: number }

export interface Decider { tenantId: string, userId: string }

interface Decided { call: JournalCall, approve: boolean, reason?: string }

const notPending = (detail: string): ServiceError => new ServiceError('APPROVAL_NOT_PENDING', { detail })
const idsOf = (calls: JournalCall[]): string => calls.map((call) => call.callId).join(', ')

/**
 * Records the decisions and, when none is pending any more, queues the run's next start.
 * Answers the run's record afterwards; undefined when the tenant has no such execution.
 */
export async function decideApprovals (deps: QueuedExecutionsDeps, decider: Decider, executionId: string, request: DecisionRequest): Promise<RunRecord | undefined> {
  const { tenantId, userId } = decider
  const record = await deps.records.get(executionId)
  if (record === undefined || record.tenantId !== tenantId) {
    // No record: a run stored and its record expired, or none of this tenant's.
    if (record !== undefined) return undefined
    const row = await withTenant(deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
    if (row === undefined) return undefined
    throw notPending(`The execution is ${row.status}: only a run awaiting_approval has calls to decide`)
  }
  if (record.status !== 'awaiting_approval') throw notPending(`The execution is ${record.status}: only a run awaiting_approval has calls to decide`)
  const at = new Date().toISOString()
  const outcome = await withTenant(deps.db, tenantId, async (trx) => {
    const stored = await readJournal(trx, executionId, true)
    if (stored === undefined) throw notPending('The execution has no calls waiting for a decision')
    const { journal } = stored
    const decided = chosen(journal, request)
    for (const { call, approve, reason } of decided) call.decision = { approve, ...(reason !== undefined ? { reason } : {}), by: userId, at }
    const grant = 'approveAll' in request && request.forTool !== undefined && request.maxCalls !== undefined ? { tool: request.forTool, remaining: request.maxCalls, by: userId } : undefined
    if (grant !== undefined) journal.grants.push(grant)
    await writeJournal(trx, tenantId, executionId, journal)
    const rows = decided.map(({ call, approve, reason }) => ({ tenant_id: tenantId, execution_id: executionId, call_id: call.callId, tool: call.tool, approve, reason: reason ?? null, decided_by: userId, decided_at: at }))
    // A grant is a decision too: on calls not made yet, named by the grant's place in the journal.
    if (grant !== undefined) rows.push({ tenant_id: tenantId, execution_id: executionId, call_id: `grant-${journal.grants.length - 1}`, tool: grant.tool, approve: true, reason: `up to ${grant.remaining} further calls`, decided_by: userId, decided_at: at })
    if (rows.length > 0) await trx.insertInto('approval_decisions').values(rows).onConflict((oc) => oc.doNothing()).execute()
    return { decided, left: pendingCalls(journal).length, job: stored.job }
  })
  for (const { call, approve } of outcome.decided) {
    await deps.events.append(executionId, 'approval_decided', { callId: call.callId, approve, by: userId }).catch((err: unknown) => { deps.log.warn({ err, executionId }, 'could not append an approval_decided event') })
  }
  if (outcome.left > 0) {
    await deps.events.keep(executionId, waitingEventsTtlMs(deps)).catch(() => {})
    return await deps.records.get(executionId) ?? record
  }
  // Nothing pending: the next start, as a new job. A decision that lost a race with the expiry
  // or a cancel finds the run ended: its decisions are recorded, nothing starts.
  const start = (record.starts ?? 1) + 1
  const queued = await deps.records.move(executionId, ['awaiting_approval'], { status: 'queued', starts: start })
  if (queued === undefined) return await deps.records.get(executionId) ?? record
  // It waits no more: its place goes back before its next start is queued, so a start that
  // waits again at once takes a place of its own (a release after the add could free that one).
  await giveWaitingPlaceBack(deps, tenantId, executionId)
  await deps.records.dueAt(executionId, firstDue({ ...queued, submittedAt: new Date().toISOString() })).catch(() => {})
  try {
    await deps.queue.add({ ...outcome.job, start })
  } catch (err) {
    // The queue did not take it: the run waits again (its decisions kept, its place taken back
    // whatever the bound says: it was counted before), and the caller gets 503.
    const back = await deps.records.move(executionId, ['queued'], { status: 'awaiting_approval', starts: start - 1 }, waitingRecordTtlMs(deps)).catch(() => undefined)
    if (back !== undefined) await keepWaitingPlace(deps, tenantId, executionId, waitingRecordTtlMs(deps)).catch(() => {})
    throw err
  }
  return queued
}

/** The calls a request decides, each checked to be pending now. */
function chosen (journal: RunJournal, request: DecisionRequest): Decided[] {
  const pending = pendingCalls(journal)
  if ('approveAll' in request) {
    const calls = pending.filter((call) => request.forTool === undefined || call.tool === request.forTool)
    if (calls.length === 0 && request.maxCalls === undefined) {
      throw notPending(request.forTool === undefined ? 'No call is pending' : `No call of ${request.forTool} is pending; pending now: ${idsOf(pending)}`)
    }
    return calls.map((call) => ({ call, approve: true }))
  }
  const byId = new Map(pending.map((call) => [call.callId, call]))
  const seen = new Set<string>()
  return request.decisions.map(({ callId, approve, reason }) => {
    if (seen.has(callId)) throw new ServiceError('BAD_REQUEST', { detail: `body/decisions names ${callId} twice: decide each call once` })
    seen.add(callId)
    const call = byId.get(callId)
    if (call === undefined) throw notPending(`${callId} is not a pending call of this run; pending now: ${pending.length === 0 ? 'none' : idsOf(pending)}`)
    return { call, approve, ...(reason !== undefined ? { reason } : {}) }
  })
}
