import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { listAuditEntries } from '../../services/audit/audit-log.ts'

const AuditEntry = Type.Object({
  id: Type.String({ description: 'Pass as `before` to read the next page' }),
  executionId: Type.String(),
  userId: Type.String(),
  action: Type.Enum(['code_execution', 'execution_refused']),
  codeSha256: Type.Union([Type.String(), Type.Null()]),
  success: Type.Boolean(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  durationMs: Type.Union([Type.Integer(), Type.Null()]),
  toolCalls: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' })
})

const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/audit', {
    schema: {
      tags: ['execution'],
      summary: 'The caller\'s tenant\'s audit entries, newest first',
      querystring: Type.Object({
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        before: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'An entry id: only older entries are listed' }))
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({ entries: Type.Array(AuditEntry), nextBefore: Type.Union([Type.String(), Type.Null()]) }),
        400: ErrorBody,
        401: ErrorBody,
        503: ErrorBody
      }
    }
  }, async (request) => {
    const { limit = 50, before } = request.query
    const entries = await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await listAuditEntries(trx, { limit, before }))
    return { entries, nextBefore: entries.length === limit ? entries[entries.length - 1]?.id ?? null : null }
  })
}

export default auditRoutes
