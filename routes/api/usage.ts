import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { readUsage } from '../../services/quotas/usage.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { readUsageHistory } from '../../services/audit/usage-history.ts'
import { TenantQuotasSchema, TierSchema } from '../../services/tenants/tiers.ts'

const Usage = Type.Object({
  tenantId: Type.String(),
  tier: TierSchema,
  executions: Type.Integer({ description: 'Executions started today (UTC)' }),
  toolCalls: Type.Integer({ description: 'Tool calls made today (UTC)' }),
  concurrentExecutions: Type.Integer({ description: 'Executions running now, across all instances' }),
  quotas: TenantQuotasSchema,
  periodStart: Type.String({ format: 'date-time' }),
  periodEnd: Type.String({ format: 'date-time', description: 'When the daily counters reset' })
}, { $id: 'Usage' })

const UsageHistoryQuery = Type.Object({
  days: Type.Optional(Type.Integer({ minimum: 1, maximum: 90, default: 30, description: 'How many UTC days, today included' }))
}, { additionalProperties: false })

const UsageHistory = Type.Object({
  days: Type.Array(Type.Object({
    date: Type.String({ format: 'date', description: 'The UTC day' }),
    executions: Type.Integer({ description: 'Executions that ran (refusals not counted)' }),
    failures: Type.Integer({ description: 'Executions that did not succeed' }),
    toolCalls: Type.Integer(),
    p50DurationMs: Type.Integer({ description: 'Median execution duration; 0 on a day without runs' })
  }, { $id: 'UsageDay' }), { description: 'Oldest first, one entry per day, days without runs as zeros' })
}, { $id: 'UsageHistory' })

const usageRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/usage', {
    schema: operation('usage', 'getUsage', 'Today\'s usage and quotas', 'The caller\'s tenant\'s executions, tool calls and concurrent runs for the current UTC day, with the quotas they count against and when the counters reset.', {
      response: { 200: json('Usage for the current UTC day', Usage, rl), ...errors([401, 429, 503]) }
    })
  }, async (request) => await readUsage(fastify.store, request.tenant))

  fastify.get('/usage/history', {
    schema: operation('usage', 'getUsageHistory', 'Usage per UTC day', 'The caller\'s tenant\'s executions, failures, tool calls and median duration per UTC day, from the audit log, oldest first.', {
      querystring: UsageHistoryQuery,
      response: { 200: json('One entry per day, days without runs as zeros', UsageHistory, rl), ...errors([400, 401, 429, 503]) }
    })
  }, async (request) => {
    // The validator converts types but applies no defaults (routes/api/audit.ts does the same).
    const { days = 30 } = request.query
    return { days: await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await readUsageHistory(trx, days)) }
  })
}

export default usageRoutes
