// GET /api/executions' filters: status, a submittedAt range (from/to, ISO dates or date-times)
// and an outcome code (an execution error code, or OK for a success). Checked here with messages
// that list what is allowed, so a console or script learns the values from a 400.
import { ServiceError } from '../errors/index.ts'
import { EXECUTION_ERROR_CODES } from '../errors/registry.ts'
import type { ExecutionStatus } from '../db/schema.ts'

export const EXECUTION_STATUSES = ['queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled'] as const satisfies readonly ExecutionStatus[]
/** A run's outcome code: OK for a success, else its result's error code. */
export const OUTCOME_CODES = ['OK', ...EXECUTION_ERROR_CODES] as const

export interface ListFilter {
  status?: ExecutionStatus
  /** submittedAt >= from */
  from?: Date
  /** submittedAt < to (a date alone: the whole day is included) */
  to?: Date
  code?: string
}

const DATE = /^\d{4}-\d{2}-\d{2}$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/
const DAY_MS = 24 * 3600_000

function bad (detail: string): ServiceError { return new ServiceError('BAD_REQUEST', { detail }) }

/** A date is midnight UTC; as `to`, the end of that day (exclusive: the next midnight). */
function parseInstant (name: 'from' | 'to', value: string): Date {
  const isDate = DATE.test(value)
  const at = isDate || DATE_TIME.test(value) ? new Date(isDate ? `${value}T00:00:00Z` : value) : undefined
  if (at === undefined || Number.isNaN(at.getTime())) throw bad(`querystring/${name} must be an ISO date (2026-12-07) or date-time (2026-12-07T10:00:00Z)`)
  return isDate && name === 'to' ? new Date(at.getTime() + DAY_MS) : at
}

/** The query's filters, checked; a 400 BAD_REQUEST names the allowed values. */
export function listFilterOf (query: { status?: string, from?: string, to?: string, code?: string }): ListFilter {
  const filter: ListFilter = {}
  if (query.status !== undefined) {
    if (!(EXECUTION_STATUSES as readonly string[]).includes(query.status)) throw bad(`querystring/status must be one of: ${EXECUTION_STATUSES.join(', ')}`)
    filter.status = query.status as ExecutionStatus
  }
  if (query.code !== undefined) {
    if (!(OUTCOME_CODES as readonly string[]).includes(query.code)) throw bad(`querystring/code must be OK or an execution error code: ${EXECUTION_ERROR_CODES.join(', ')}`)
    filter.code = query.code
  }
  if (query.from !== undefined) filter.from = parseInstant('from', query.from)
  if (query.to !== undefined) filter.to = parseInstant('to', query.to)
  if (filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to) throw bad('querystring/from must be before to')
  return filter
}
