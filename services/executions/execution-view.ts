// An execution as the API shows it: its row, or, while the row still says queued or running,
// the result its `final` event already carries.
import type { ExecutionRow, ExecutionStatus } from '../db/schema.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import type { EventLog } from './event-log.ts'
import { FINISHED, statusOf } from './execution-repository.ts'

export interface ExecutionView {
  executionId: string
  status: ExecutionStatus
  submittedAt: string
  startedAt?: string
  finishedAt?: string
  result?: ExecutionResult
}

const iso = (d: Date | string | null): string | undefined => d === null ? undefined : new Date(d).toISOString()

export function toView (row: ExecutionRow): ExecutionView {
  const view: ExecutionView = { executionId: row.execution_id, status: row.status, submittedAt: iso(row.submitted_at)! }
  if (row.started_at !== null) view.startedAt = iso(row.started_at)
  if (row.finished_at !== null) view.finishedAt = iso(row.finished_at)
  if (row.result !== null) view.result = (typeof row.result === 'string' ? JSON.parse(row.result) : row.result) as ExecutionResult
  return view
}

/**
 * A row as the API shows it. A run's `final` goes out before its row is written (the worker's
 * finish), so a row that still says queued or running is read with its `final`, if it has one:
 * whoever saw the final finds the result, by id and in the list alike.
 */
export async function viewWithFinal (events: EventLog, row: ExecutionRow): Promise<ExecutionView> {
  const view = toView(row)
  if (FINISHED.has(row.status)) return view
  const final = await finalOf(events, row.execution_id)
  return final === undefined ? view : { ...view, status: statusOf(final.result), finishedAt: final.at, result: final.result }
}

/** The result the run's `final` event carries, if it has one; undefined also when Redis cannot say. */
export async function finalOf (events: EventLog, executionId: string): Promise<{ result: ExecutionResult, at: string } | undefined> {
  const event = await events.finalOf(executionId).catch(() => undefined)
  return event === undefined ? undefined : { result: event.data.result as ExecutionResult, at: event.at }
}
