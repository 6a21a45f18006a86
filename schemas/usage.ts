import { Type } from 'typebox'
import { MAX_EXPORT_DAYS } from '../services/audit/usage-export.ts'
import { MAX_USERS_LISTED } from '../services/audit/usage-history.ts'

// What the usage routes answer (docs/api.md "Usage"). User ids are the tokens' userId (or sub).

const UserId = Type.String({ minLength: 1, maxLength: 256 })

export const UsageQuery = Type.Object({
  groupBy: Type.Optional(Type.Literal('user', { description: 'user: add `users`, today\'s runs per user (the caller\'s own only, unless the token has usage:read-all)' }))
}, { additionalProperties: false })

export const UserUsageSchema = Type.Object({
  userId: Type.String(),
  executions: Type.Integer({ description: 'Runs today (UTC), refusals not counted' }),
  toolCalls: Type.Integer(),
  cpuMs: Type.Integer({ description: 'Isolate CPU ms of those runs' })
}, { $id: 'UserUsage' })

export const UsersField = Type.Array(UserUsageSchema, { description: `With groupBy=user: today's runs per user from the daily rollup, most executions first, at most ${MAX_USERS_LISTED} (the export lists all)` })

export const UsageHistoryQuery = Type.Object({
  days: Type.Optional(Type.Integer({ minimum: 1, maximum: 90, default: 30, description: 'How many UTC days, today included' })),
  userId: Type.Optional({ ...UserId, description: 'One user\'s days only; another user than the caller needs usage:read-all' })
}, { additionalProperties: false })

export const UsageHistory = Type.Object({
  days: Type.Array(Type.Object({
    date: Type.String({ format: 'date', description: 'The UTC day' }),
    executions: Type.Integer({ description: 'Executions that ran (refusals not counted)' }),
    failures: Type.Integer({ description: 'Executions that did not succeed' }),
    toolCalls: Type.Integer(),
    cpuMs: Type.Integer({ description: 'Isolate CPU ms, summed' }),
    wallMs: Type.Integer({ description: 'Wall ms of the runs, summed' }),
    bytesIn: Type.Integer({ description: 'Code and tool arguments, bytes, summed' }),
    bytesOut: Type.Integer({ description: 'Results and logs, bytes, summed' }),
    p50DurationMs: Type.Integer({ description: 'Approximate median execution duration, from a histogram with buckets √2 apart (within ±19 %); 0 on a day without runs' })
  }, { $id: 'UsageDay' }), { description: 'Oldest first, one entry per day, days without runs as zeros' })
}, { $id: 'UsageHistory' })

const Day = (what: string) => Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: `${what} UTC day, YYYY-MM-DD, included` })
const Format = Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('ndjson')], { default: 'csv', description: 'csv (RFC 4180, a header line) or ndjson (one JSON object a line)' }))

export const UsageExportQuery = Type.Object({
  from: Day('The first'),
  to: Day('The last'),
  format: Format,
  userId: Type.Optional({ ...UserId, description: 'One user only; without usage:read-all the export has the caller\'s own rows only' })
}, { additionalProperties: false })

export const AdminUsageQuery = Type.Object({
  from: Day('The first'),
  to: Day('The last'),
  format: Format,
  tenantId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'One tenant only' }))
}, { additionalProperties: false })

export const exportResponse = (columns: readonly string[]) => ({
  description: `Daily rows per user, streamed, ordered by ${columns.includes('tenantId') ? 'tenant, date and user' : 'date and user'}; at most ${MAX_EXPORT_DAYS} days per request. Columns: ${columns.join(',')}`,
  content: {
    'text/csv': { schema: Type.String({ description: `A header line ${columns.join(',')}, then one line per day and user (CRLF)` }) },
    'application/x-ndjson': { schema: Type.String({ description: 'One JSON object per line with the same fields' }) }
  }
})
