// GET /api/executions: the tenant's rows (ended runs) and its records not stored yet (accepted
// runs: queued, running, or ended while their row is being written), as one newest-first list.
import { withTenant } from '../db/with-tenant.ts'
import type { RunRecord } from './execution-records.ts'
import { getExecution, listExecutions, type ListCursor } from './execution-repository.ts'
import { viewWithFinal, type ExecutionView } from './execution-view.ts'
import type { ListFilter } from './list-filter.ts'
import type { QueuedExecutionsDeps } from './queued-executions-deps.ts'

export interface ExecutionPage { executions: ExecutionView[], nextBefore: string | null }

/** OK for a success, the error code for a failure, undefined while the run is not over. */
const outcomeCodeOf = (view: ExecutionView): string | undefined => view.result === undefined ? undefined : view.result.success ? 'OK' : view.result.error?.code

/** Newest first; the id breaks ties, as the rows' index does. */
const newestFirst = (a: ExecutionView, b: ExecutionView): number =>
  a.submittedAt === b.submittedAt ? (a.executionId < b.executionId ? 1 : a.executionId > b.executionId ? -1 : 0) : (a.submittedAt < b.submittedAt ? 1 : -1)

const iso = (d: Date | string): string => new Date(d).toISOString()

export async function listRuns (deps: Pick<QueuedExecutionsDeps, 'db' | 'records' | 'events'>, tenantId: string, options: ListFilter & { limit: number, before?: string }): Promise<ExecutionPage> {
  const records = await deps.records.unstored(tenantId)
  const cursor = options.before === undefined ? undefined : await cursorOf(deps, tenantId, records, options.before.toLowerCase())
  if (options.before !== undefined && cursor === undefined) return { executions: [], nextBefore: null }
  const { before: _named, ...filter } = options
  const rows = await withTenant(deps.db, tenantId, async (trx) => await listExecutions(trx, { ...filter, ...(cursor !== undefined ? { before: cursor } : {}) }))
  const unstoredIds = new Set(records.map((record) => record.executionId))
  // A record and the row it was just stored as are one run: the record reads as fresh.
  const runs: Array<Parameters<typeof viewWithFinal>[1]> = [...rows.filter((row) => !unstoredIds.has(row.execution_id)), ...records.filter((record) => inRange(record, options, cursor))]
  // Unfinished runs are few (a tenant's slots and queue bound), so their finals are looked up
  // one by one. A run asked for as queued or running whose final is out has ended: it leaves
  // the page. A status filter for an end finds such a run once its record says so, a moment later.
  const views = await Promise.all(runs.map(async (run) => await viewWithFinal(deps.events, run)))
  const matching = views
    .filter((view) => (options.status === undefined || view.status === options.status) && (options.code === undefined || outcomeCodeOf(view) === options.code))
    .sort(newestFirst)
  const executions = matching.slice(0, options.limit)
  // More may follow: rows past this page, or runs this page had no room for.
  const more = rows.length === options.limit || matching.length > options.limit
  return { executions, nextBefore: more && executions.length > 0 ? executions.at(-1)!.executionId : null }
}

/** Where the page named by `before` starts: its record, or its row. */
async function cursorOf (deps: Pick<QueuedExecutionsDeps, 'db' | 'records'>, tenantId: string, records: RunRecord[], before: string): Promise<ListCursor | undefined> {
  const record = records.find((r) => r.executionId === before) ?? await deps.records.get(before)
  if (record !== undefined) return record.tenantId === tenantId ? { submittedAt: new Date(record.submittedAt), executionId: record.executionId } : undefined
  const row = await withTenant(deps.db, tenantId, async (trx) => await getExecution(trx, before))
  return row === undefined ? undefined : { submittedAt: new Date(row.submitted_at), executionId: row.execution_id }
}

function inRange (record: RunRecord, filter: ListFilter, cursor: ListCursor | undefined): boolean {
  const at = record.submittedAt
  if (filter.from !== undefined && at < filter.from.toISOString()) return false
  if (filter.to !== undefined && at >= filter.to.toISOString()) return false
  if (cursor === undefined) return true
  const from = iso(cursor.submittedAt)
  return at < from || (at === from && record.executionId < cursor.executionId)
}
