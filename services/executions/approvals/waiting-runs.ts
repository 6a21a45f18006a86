// A queued run between its starts: a start that stopped at a gated call makes the run wait
// (awaiting_approval: journal kept in PostgreSQL, no isolate, no slot), and a waiting run ends
// without starting again when it is cancelled or nobody decides in time (APPROVAL_EXPIRED).
import { enclaveError, type ExecutionError, type ExecutionResult } from '../../enclave/index.ts'
import { formatMessage } from '../../errors/registry.ts'
import { EVENTS_TTL_MS } from '../event-log.ts'
import type { ExecutionJob } from '../execution-queue.ts'
import { RECORD_TTL_MS, type RunRecord } from '../execution-records.ts'
import type { ExecutionStatus } from '../../db/schema.ts'
import type { QueuedExecutionsDeps } from '../queued-executions-deps.ts'
import { storeRun } from '../stored-runs.ts'
import { deleteJournal, loadJournal, saveJournal } from './journal-store.ts'
import type { RunJournal } from './run-journal.ts'
import { giveWaitingPlaceBack, takeWaitingPlace } from './waiting-places.ts'

export const DEFAULT_APPROVAL_TTL_MS = 24 * 3600_000

export const approvalTtlMs = (deps: Pick<QueuedExecutionsDeps, 'approvalTtlMs'>): number => deps.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS
/** A waiting run's record outlives its wait by as much as a running one's outlives its run. */
export const waitingRecordTtlMs = (deps: Pick<QueuedExecutionsDeps, 'approvalTtlMs'>): number => approvalTtlMs(deps) + RECORD_TTL_MS
/** Its events too: a watcher that comes back while it waits resumes without a gap. */
export const waitingEventsTtlMs = (deps: Pick<QueuedExecutionsDeps, 'approvalTtlMs'>): number => approvalTtlMs(deps) + EVENTS_TTL_MS

/** An event the worker holds back until the run is seen waiting (approval_required). */
export interface HeldEvent { type: 'approval_required', data: Record<string, unknown> }

/** What became of a start that suspended: the run waits, another party ended it, or it may not wait (why). */
export type Suspended = 'waiting' | 'gone' | ExecutionError

/**
 * A start came back suspended: it takes its place among its tenant's waiting runs
 * (maxWaitingRuns), its journal and job are kept (PostgreSQL, charged to the tenant's storage),
 * then the record says awaiting_approval, and only then do its approval_required events go out,
 * so a decision made on seeing one finds the run waiting. The run's slot was freed with its
 * isolate. 'gone' when the run was no longer running (another party ended it): nothing is kept
 * then. An error when the tenant has no place or storage left for it: nothing is kept, and the
 * caller ends the run with it.
 */
export async function suspendRun (deps: QueuedExecutionsDeps, job: ExecutionJob, journal: RunJournal, held: HeldEvent[]): Promise<Suspended> {
  const { executionId, tenantId } = job
  const quotas = await deps.quotasOf(tenantId)
  const refused = await takeWaitingPlace(deps, tenantId, executionId, quotas.maxWaitingRuns, waitingRecordTtlMs(deps))
  if (refused !== undefined) return refused
  let saved = false
  let kept = false
  try {
    const expiresAt = new Date(Date.now() + approvalTtlMs(deps))
    const { start: _start, ...stored } = job
    const full = await saveJournal(deps.db, tenantId, executionId, { journal, job: stored, expiresAt }, quotas.storageBytes)
    if (full !== undefined) return enclaveError('APPROVAL_STORAGE_EXCEEDED', formatMessage('APPROVAL_STORAGE_EXCEEDED', full))
    saved = true
    const waiting = await deps.records.move(executionId, ['running'], { status: 'awaiting_approval', expiresAt: expiresAt.toISOString() }, waitingRecordTtlMs(deps))
    if (waiting === undefined) return 'gone'
    kept = true
    // The sweep looks at it again when it expires (its row is not due before it ends); retention
    // looks at the tenant, so a journal its run's end failed to delete goes in time too.
    await deps.records.dueAt(executionId, expiresAt.getTime()).catch(() => {})
    await deps.tenantIndex.add(tenantId).catch(() => {})
    for (const event of held) await deps.events.append(executionId, event.type, event.data).catch(() => {})
    await deps.events.keep(executionId, waitingEventsTtlMs(deps)).catch(() => {})
    return 'waiting'
  } finally {
    // A run that does not wait keeps nothing: no journal (nor the storage it took) and no place,
    // a throw included (the caller ends the run).
    if (saved && !kept) await deleteJournal(deps.db, tenantId, executionId).catch(() => {})
    if (!kept) await giveWaitingPlaceBack(deps, tenantId, executionId)
  }
}

/** The result of a waiting run nobody decided on in time. */
export function expiredResult (deps: Pick<QueuedExecutionsDeps, 'approvalTtlMs'>, executionId: string): ExecutionResult {
  const ttl = `${Math.round(approvalTtlMs(deps) / 1000)} s`
  return { executionId, success: false, error: { name: 'ApprovalExpiredError', code: 'APPROVAL_EXPIRED', message: formatMessage('APPROVAL_EXPIRED', { ttl }) }, logs: [], stats: { duration: 0, toolCallCount: 0 } }
}

/**
 * Ends a run that is not running (queued, or waiting for approval) with `result`: the record
 * first (whoever moves it out of `from` decides), then `final`, the hooks (audit, metrics),
 * the journal and the row. Answers the ended record, or undefined when another party moved it first.
 */
export async function endNotRunning (deps: QueuedExecutionsDeps, record: RunRecord, from: ExecutionStatus, result: ExecutionResult): Promise<RunRecord | undefined> {
  const { executionId, tenantId } = record
  const ended = await deps.records.move(executionId, [from], { status: result.error?.code === 'CANCELLED' ? 'cancelled' : 'failed', finishedAt: new Date().toISOString(), result })
  if (ended === undefined) return undefined
  deps.execution.hooks.ended({ tenantId, executionId, userId: record.userId, codeSha256: record.codeSha256 }, result)
  await deps.events.append(executionId, 'final', { result })
  // A waiting run gives its place back (cancelled, or expired).
  if (from === 'awaiting_approval') await giveWaitingPlaceBack(deps, tenantId, executionId)
  // A run that waited before has a journal: it goes with the run (the decisions stay).
  if (from === 'awaiting_approval' || (record.starts ?? 1) > 1) {
    await deleteJournal(deps.db, tenantId, executionId).catch((err: unknown) => { deps.log.warn({ err, executionId }, 'could not delete an ended run\'s journal') })
  }
  // Off the answer's path, and never failing it: PostgreSQL away, the sweep stores it later.
  void storeRun(deps, ended)
  return ended
}

/**
 * The sweep's look at a waiting run that is due: past its expiry it ends APPROVAL_EXPIRED;
 * before it (a decision moved it, or another sweep took it early) it is due again at its expiry.
 * True when this call ended it.
 */
export async function expireIfDue (deps: QueuedExecutionsDeps, record: RunRecord, now: number): Promise<boolean> {
  const expiresAt = record.expiresAt === undefined ? now : Date.parse(record.expiresAt)
  if (expiresAt > now) {
    await deps.records.dueAt(record.executionId, expiresAt)
    return false
  }
  return await endNotRunning(deps, record, 'awaiting_approval', expiredResult(deps, record.executionId)) !== undefined
}

/**
 * The journal a later start replays, read with the slot held. 'retry': PostgreSQL did not
 * answer (the slot is given back and the job tried again later). undefined: there is none, so
 * the run cannot go on; it has been ended failed.
 */
export async function journalForResume (deps: QueuedExecutionsDeps, job: ExecutionJob, slot: { release: () => Promise<void> }): Promise<RunJournal | 'retry' | undefined> {
  const { executionId, tenantId } = job
  let stored
  try {
    stored = await loadJournal(deps.db, tenantId, executionId)
  } catch (err) {
    deps.log.warn({ err, executionId }, 'could not read a resumed run\'s journal yet; trying again')
    await slot.release().catch(() => {})
    return 'retry'
  }
  if (stored !== undefined) return stored.journal
  await slot.release().catch(() => {})
  const record = await deps.records.get(executionId)
  if (record !== undefined) {
    const gone = enclaveError('INTERNAL_ERROR', 'The record of what this run did before it waited for approval is gone; it was not run again')
    await endNotRunning(deps, record, 'queued', { executionId, success: false, error: gone, logs: [], stats: { duration: 0, toolCallCount: 0 } })
  }
  return undefined
}
