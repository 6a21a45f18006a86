// An ended run's PostgreSQL row, written from its record by whoever ended the run, off the path
// of its `final`. PostgreSQL down: the record stays (and the list and GET read it), and the
// sweep, on any worker instance, writes the row once PostgreSQL answers again.
import type { RunRecord } from './execution-records.ts'
import { FINISHED, insertFinishedExecution } from './execution-repository.ts'
import type { QueuedExecutionsDeps } from './queued-executions-deps.ts'

/** A row PostgreSQL refused is tried again after this (by the sweep). */
const STORE_RETRY_MS = 1000
/** How many due runs one sweep takes. */
const SWEEP_BATCH = 100

/** Writes the row of an ended run; never throws (what fails is left for the sweep). True once stored. */
export async function storeRun (deps: QueuedExecutionsDeps, record: RunRecord): Promise<boolean> {
  try {
    await insertFinishedExecution(deps.db, record)
  } catch (err) {
    deps.log.warn({ err, executionId: record.executionId }, 'could not store a finished execution yet; its record keeps it and it is tried again')
    await deps.records.dueAt(record.executionId, Date.now() + STORE_RETRY_MS).catch(() => {})
    return false
  }
  try {
    // Retention prunes the tenants that have rows, one tenant at a time.
    await Promise.all([deps.records.stored(record), deps.tenantIndex.add(record.tenantId)])
  } catch (err) {
    // The row is there; the sweep finds the record again and its second write changes nothing.
    deps.log.warn({ err, executionId: record.executionId }, 'could not mark an execution stored')
  }
  return true
}

/**
 * One sweep: the rows of ended runs not stored in time (PostgreSQL refused them, or their
 * instance stopped between the end and the row). A run not ended yet is left to its worker (or
 * to the lost-run check should that die); it is due again later. A run waiting for approval is
 * due at its expiry, and handed to `onWaiting`. Answers how many it stored.
 */
export async function sweepUnstored (deps: QueuedExecutionsDeps, now = Date.now(), onWaiting?: (record: RunRecord) => Promise<unknown>): Promise<number> {
  let stored = 0
  for (const record of await deps.records.due(now, SWEEP_BATCH)) {
    if (FINISHED.has(record.status) && await storeRun(deps, record)) stored++
    else if (record.status === 'awaiting_approval') await onWaiting?.(record)
  }
  return stored
}
