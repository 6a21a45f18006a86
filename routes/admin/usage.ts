import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors, operation } from '../../schemas/responses.ts'
import { AdminUsageQuery, exportResponse } from '../../schemas/usage.ts'
import { ADMIN_EXPORT_COLUMNS, checkExportRange, platformUsageExport } from '../../services/audit/usage-export.ts'
import { prepend, sendExport } from '../api/usage.ts'

const adminUsageRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/usage', {
    schema: operation('admin', 'adminExportUsage', 'Daily usage per tenant and user, for the platform', `Every tenant's daily rows per user from \`from\` to \`to\` (UTC days, both included, at most a year), streamed as CSV or NDJSON with the columns ${ADMIN_EXPORT_COLUMNS.join(',')}; \`tenantId\` for one tenant.`, {
      querystring: AdminUsageQuery,
      response: { 200: exportResponse(ADMIN_EXPORT_COLUMNS), ...errors([400, 401, 403, 429, 503], { 400: 'A date that is not YYYY-MM-DD, from after to, a range over 366 days, or a format other than csv or ndjson (BAD_REQUEST): the message says what to send' }) }
    })
  }, async (request, reply) => {
    const { from, to, format = 'csv', tenantId } = request.query
    const range = checkExportRange({ from, to })
    const rows = platformUsageExport(fastify.db, range, format, tenantId)
    return sendExport(reply, prepend(await rows.next(), rows), format, `usage-all-${from}-${to}`)
  })
}

export default adminUsageRoutes
