import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors/index.ts'
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
})

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
  }), { description: 'Oldest first, one entry per day, days without runs as zeros' })
})

const usageRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/usage', {
    schema: {
      tags: ['execution'],
      summary: 'The caller\'s usage for the current UTC day, with its quotas',
      response: { 200: Usage, 401: ErrorBody, 503: ErrorBody }
    }
  }, async (request) => await readUsage(fastify.store, request.tenant))

  fastify.get('/usage/history', {
    schema: {
      tags: ['execution'],
      summary: 'The caller\'s executions, failures, tool calls and median duration per UTC day, from the audit log',
      querystring: UsageHistoryQuery,
      response: { 200: UsageHistory, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody }
    }
  }, async (request) => {
    // The validator converts types but applies no defaults (routes/api/audit.ts does the same).
    const { days = 30 } = request.query
    return { days: await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await readUsageHistory(trx, days)) }
  })
}

export default usageRoutes
