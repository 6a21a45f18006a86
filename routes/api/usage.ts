import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, json, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { readUsage } from '../../services/quotas/usage.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { readUsageHistory } from '../../services/audit/usage-history.ts'
import { readStorage } from '../../services/tools/document-storage.ts'
import { TenantQuotasSchema, TierSchema } from '../../services/tenants/tiers.ts'

const Usage = Type.Object({
  tenantId: Type.String(),
  tier: TierSchema,
  executions: Type.Integer({ description: 'Executions started today (UTC)' }),
  toolCalls: Type.Integer({ description: 'Tool calls made today (UTC)' }),
  cpuMs: Type.Integer({ description: 'Isolate CPU ms of today\'s finished runs (UTC), against quotas.maxCpuSecondsPerDay' }),
  concurrentExecutions: Type.Integer({ description: 'Executions running now, across all instances' }),
  storage: Type.Object({
    bytes: Type.Integer({ description: 'Bytes the tenant\'s documents take (the JSON text of their bodies)' }),
    documents: Type.Integer({ description: 'Documents the tenant keeps' }),
    limitBytes: Type.Integer({ description: 'quotas.storageBytes' }),
    limitDocuments: Type.Integer({ description: 'quotas.storageDocuments' })
  }, { description: 'What the tenant keeps now, and its bounds: data:insert past them fails with STORAGE_QUOTA_EXCEEDED' }),
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
    schema: {
      operationId: 'getUsage',
      tags: ['usage'],
      summary: 'Today\'s usage and quotas',
      description: 'The caller\'s tenant\'s executions, tool calls, CPU and concurrent runs for the current UTC day, with the quotas they count against and when the counters reset, and the storage its documents take.',
      response: { 200: json('Usage for the current UTC day', Usage, rl), ...errors([401, 429, 503]) }
    }
  }, async (request) => {
    const { tenant } = request
    const [usage, storage] = await Promise.all([
      readUsage(fastify.store, tenant),
      withTenant(fastify.db, tenant.tenantId, async (trx) => await readStorage(trx, tenant.tenantId, tenant.quotas))
    ])
    return { ...usage, storage }
  })

  fastify.get('/usage/history', {
    schema: {
      operationId: 'getUsageHistory',
      tags: ['usage'],
      summary: 'Usage per UTC day',
      description: 'The caller\'s tenant\'s executions, failures, tool calls and median duration per UTC day, from the audit log, oldest first.',
      querystring: UsageHistoryQuery,
      response: { 200: json('One entry per day, days without runs as zeros', UsageHistory, rl), ...errors([400, 401, 429, 503]) }
    }
  }, async (request) => {
    // The validator converts types but applies no defaults (routes/api/audit.ts does the same).
    const { days = 30 } = request.query
    return { days: await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await readUsageHistory(trx, days)) }
  })
}

export default usageRoutes
