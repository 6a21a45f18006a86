import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import { Type } from 'typebox'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { readUsage } from '../../services/quotas/usage.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { readUsageHistory, readUsersToday } from '../../services/audit/usage-history.ts'
import { checkExportRange, EXPORT_COLUMNS, tenantUsageExport, type ExportFormat } from '../../services/audit/usage-export.ts'
import { ServiceError } from '../../services/errors/index.ts'
import { readStorage } from '../../services/tools/document-storage.ts'
import { TenantQuotasSchema, TierSchema } from '../../services/tenants/tiers.ts'
import { exportResponse, UsageExportQuery, UsageHistory, UsageHistoryQuery, UsageQuery, UsersField } from '../../schemas/usage.ts'

/** The permission that shows a token the usage of its tenant's other users. */
export const READ_ALL_USAGE = 'usage:read-all'

const Usage = Type.Object({
  tenantId: Type.String(),
  tier: TierSchema,
  executions: Type.Integer({ description: 'Executions started today (UTC)' }),
  toolCalls: Type.Integer({ description: 'Tool calls made today (UTC)' }),
  cpuMs: Type.Integer({ description: 'Isolate CPU ms of today\'s finished runs (UTC), against quotas.maxCpuSecondsPerDay' }),
  concurrentExecutions: Type.Integer({ description: 'Executions running now, across all instances' }),
  waitingRuns: Type.Integer({ description: 'Queued runs awaiting approval now, across all instances, against quotas.maxWaitingRuns (past it a run reaching a gated call ends APPROVAL_WAIT_LIMIT)' }),
  storage: Type.Object({
    bytes: Type.Integer({ description: 'Bytes the tenant keeps: its documents (the JSON text of their bodies) and the records of its runs waiting for approval (their journals and jobs, while they wait)' }),
    documents: Type.Integer({ description: 'Documents the tenant keeps' }),
    limitBytes: Type.Integer({ description: 'quotas.storageBytes' }),
    limitDocuments: Type.Integer({ description: 'quotas.storageDocuments' })
  }, { description: 'What the tenant keeps now, and its bounds: data:insert past them fails with STORAGE_QUOTA_EXCEEDED, and a run whose record would take the tenant past limitBytes cannot wait for an approval (APPROVAL_STORAGE_EXCEEDED)' }),
  quotas: TenantQuotasSchema,
  periodStart: Type.String({ format: 'date-time' }),
  periodEnd: Type.String({ format: 'date-time', description: 'When the daily counters reset' }),
  users: Type.Optional(UsersField)
}, { $id: 'Usage' })

const readsAll = (request: FastifyRequest): boolean => request.tenant.permissions.includes(READ_ALL_USAGE)

/** The user whose rows the caller may read: the one asked for if allowed, else its own; undefined: all of them. */
function visibleUser (request: FastifyRequest, asked: string | undefined): string | undefined {
  if (readsAll(request)) return asked
  if (asked !== undefined && asked !== request.tenant.userId) {
    throw new ServiceError('FORBIDDEN', { reason: `reading another user's usage needs the ${READ_ALL_USAGE} permission; without it, leave userId out or pass your own (${request.tenant.userId})` })
  }
  return request.tenant.userId
}

/** Streams an export (csv or ndjson) as the body; nothing is buffered beyond a page of rows. */
export function sendExport (reply: FastifyReply, rows: AsyncGenerator<string>, format: ExportFormat, name: string): FastifyReply {
  reply.header('content-disposition', `attachment; filename="${name}.${format === 'csv' ? 'csv' : 'ndjson'}"`)
  return reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8').send(Readable.from(rows))
}

const usageRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/usage', {
    schema: operation('usage', 'getUsage', 'Today\'s usage and quotas', 'The caller\'s tenant\'s executions, tool calls, CPU and concurrent runs for the current UTC day, with the quotas they count against and when the counters reset, and the storage its documents take. `groupBy=user` adds today\'s runs per user (only the caller\'s own without usage:read-all).', {
      querystring: UsageQuery,
      response: { 200: json('Usage for the current UTC day', Usage, rl), ...errors([400, 401, 429, 503]) }
    })
  }, async (request) => {
    const { tenant } = request
    const [usage, storage] = await Promise.all([
      readUsage(fastify.store, tenant),
      withTenant(fastify.db, tenant.tenantId, async (trx) => await readStorage(trx, tenant.tenantId, tenant.quotas))
    ])
    if (request.query.groupBy !== 'user') return { ...usage, storage }
    const userId = readsAll(request) ? undefined : tenant.userId
    const users = await withTenant(fastify.db, tenant.tenantId, async (trx) => await readUsersToday(trx, new Date(), userId === undefined ? {} : { userId }))
    return { ...usage, storage, users }
  })

  fastify.get('/usage/history', {
    schema: operation('usage', 'getUsageHistory', 'Usage per UTC day', 'The caller\'s tenant\'s executions, failures, tool calls, CPU, wall time, bytes and approximate median duration per UTC day, from the daily rollup, oldest first; `userId` for one user (another user than the caller needs usage:read-all).', {
      querystring: UsageHistoryQuery,
      response: { 200: json('One entry per day, days without runs as zeros', UsageHistory, rl), ...errors([400, 401, 403, 429, 503], { 403: `userId names another user and the token lacks ${READ_ALL_USAGE} (FORBIDDEN)` }) }
    })
  }, async (request) => {
    // The validator converts types but applies no defaults (routes/api/audit.ts does the same).
    const { days = 30, userId } = request.query
    const user = userId === undefined ? undefined : visibleUser(request, userId)
    return { days: await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await readUsageHistory(trx, days, new Date(), user === undefined ? {} : { userId: user })) }
  })

  fastify.get('/usage/export', {
    schema: operation('usage', 'exportUsage', 'Daily usage per user, for billing', `The caller's tenant's daily rows per user from \`from\` to \`to\` (UTC days, both included, at most a year), streamed as CSV or NDJSON with the columns ${EXPORT_COLUMNS.join(',')}. Without ${READ_ALL_USAGE} only the caller's own rows.`, {
      querystring: UsageExportQuery,
      response: { 200: exportResponse(EXPORT_COLUMNS), ...errors([400, 401, 403, 429, 503], { 400: 'A date that is not YYYY-MM-DD, from after to, a range over 366 days, or a format other than csv or ndjson (BAD_REQUEST): the message says what to send', 403: `userId names another user and the token lacks ${READ_ALL_USAGE} (FORBIDDEN)` }) }
    })
  }, async (request, reply) => {
    const { from, to, format = 'csv', userId } = request.query
    const range = checkExportRange({ from, to })
    const user = visibleUser(request, userId)
    // The first page is read before the status goes out (the header comes after it), so a
    // database that is down is a 503, not a cut stream.
    const rows = tenantUsageExport(fastify.db, request.tenant.tenantId, range, format, user)
    const first = await rows.next()
    return sendExport(reply, prepend(first, rows), format, `usage-${from}-${to}`)
  })
}

/** The generator with its first, already read, item put back in front. */
export async function * prepend (first: IteratorResult<string>, rest: AsyncGenerator<string>): AsyncGenerator<string> {
  if (first.done === true) return
  yield first.value
  yield * rest
}

export default usageRoutes
