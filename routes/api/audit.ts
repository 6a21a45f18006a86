import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorBody, ServiceError } from '../../services/errors/index.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { getExecutionAudit, listAuditEntries } from '../../services/audit/audit-log.ts'
import { AUDIT_PAGE_DEFAULT, AuditListQuery, AuditPage, ExecutionAudit, ExecutionIdParams } from '../../schemas/audit.ts'

const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/audit', {
    schema: {
      tags: ['execution'],
      summary: 'The caller\'s tenant\'s audit entries, newest first',
      querystring: AuditListQuery,
      response: { 200: AuditPage, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody }
    }
  }, async (request) => {
    // The validator converts types but applies no defaults, so the schema's default is applied here.
    const { limit = AUDIT_PAGE_DEFAULT, before } = request.query
    const entries = await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await listAuditEntries(trx, { limit, before }))
    return { entries, nextBefore: entries.length === limit ? entries[entries.length - 1]?.id ?? null : null }
  })

  fastify.get('/audit/:executionId', {
    schema: {
      tags: ['execution'],
      summary: 'One execution\'s audit entry and its tool calls, in call order',
      params: ExecutionIdParams,
      response: { 200: ExecutionAudit, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 503: ErrorBody }
    }
  }, async (request) => {
    // RLS scopes the read: another tenant's execution is as absent as one that never ran.
    const found = await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await getExecutionAudit(trx, request.params.executionId))
    if (found === undefined) throw new ServiceError('NOT_FOUND', { what: `No audit entry for execution ${request.params.executionId}` })
    return found
  })
}

export default auditRoutes
