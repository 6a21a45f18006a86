import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors.ts'
import { readUsage } from '../../services/quotas/usage.ts'
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

const usageRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/usage', {
    schema: {
      tags: ['execution'],
      summary: 'The caller\'s usage for the current UTC day, with its quotas',
      response: { 200: Usage, 401: ErrorBody, 503: ErrorBody }
    }
  }, async (request) => await readUsage(fastify.store, request.tenant))
}

export default usageRoutes
