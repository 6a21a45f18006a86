// An execution as the API shows it: its record until its row is written, then its row; while
// either still says the run is not over, with the result its `final` event already carries.
import type { ExecutionRow, ExecutionStatus } from '../db/schema.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import type { EventLog } from './event-log.ts'
import type { RunRecord } from './execution-records.ts'
import { FINISHED, statusOf } from './execution-repository.ts'

export interface ExecutionView {
  executionId: string
  status: ExecutionStatus
  submittedAt: string
  startedAt?: string
  finishedAt?: string
  result?: ExecutionResult
  /** While awaiting_approval: when it ends APPROVAL_EXPIRED if nobody decides. */
  expiresAt?: string
}

const iso = (d: Date | string | null): string | undefined => d === null ? undefined : new Date(d).toISOString()

export function toView (row: ExecutionRow): ExecutionView {
  const view: ExecutionView = { executionId: row.execution_id, status: row.status, submittedAt: iso(row.submitted_at)! }
  if (row.started_at !== null) view.startedAt = iso(row.started_at)
  if (row.finished_at !== null) view.finishedAt = iso(row.finished_at)
  if (row.result !== null) view.result = (typeof row.result === 'string' ? JSON.parse(row.result) : row.result) as ExecutionResult
  return view
}

export function recordToView (record: RunRecord): ExecutionView {
  const view: ExecutionView = { executionId: record.executionId, status: record.status, submittedAt: record.submittedAt }
  if (record.startedAt !== undefined) view.startedAt = record.startedAt
  if (record.finishedAt !== undefined) view.finishedAt = record.finishedAt
  if (record.result !== undefined) view.result = record.result
  if (record.status === 'awaiting_approval' && record.expiresAt !== undefined) view.expiresAt = record.expiresAt
  return view
}

/**
 * A row or record as the API shows it. A run's `final` goes out before its record says so (the
 * worker's finish), so one that still says queued or running is read with its `final`, if any:
 * whoever saw the final finds the result, by id and in the list alike.
 */
export async function viewWithFinal (events: EventLog, run: ExecutionRow | RunRecord): Promise<ExecutionView> {
  const view = 'execution_id' in run ? toView(run) : recordToView(run)
  if (FINISHED.has(view.status)) return view
  const final = await finalOf(events, view.executionId)
  return final === undefined ? view : { ...view, status: statusOf(final.result), finishedAt: final.at, result: final.result }
}

/** The result the run's `final` event carries, if it has one; undefined also when Redis cannot say. */
export async function finalOf (events: EventLog, executionId: string): Promise<{ result: ExecutionResult, at: string } | undefined> {
  const event = await events.finalOf(executionId).catch(() => undefined)
  return event === undefined ? undefined : { result: event.data.result as ExecutionResult, at: event.at }
}
