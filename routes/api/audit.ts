import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ServiceError } from '../../services/errors/index.ts'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { pageAsked } from '../../schemas/paging.ts'
import { getExecutionAudit, listAuditEntries } from '../../services/audit/audit-log.ts'
import { AUDIT_PAGE_DEFAULT, AuditListQuery, AuditPage, ExecutionAudit, ExecutionIdParams } from '../../schemas/audit.ts'

const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/audit', {
    schema: operation('audit', 'listAudit', 'List audit entries', 'The caller\'s tenant\'s audit entries (runs and refusals), newest first, a page at a time: pass `nextBefore` as `before` for the next page.', {
      querystring: AuditListQuery,
      response: { 200: json('A page of audit entries, newest first', AuditPage, rl), ...errors([400, 401, 429, 503]) }
    })
  }, async (request) => {
    const { limit, before } = pageAsked(request.query, AUDIT_PAGE_DEFAULT)
    const entries = await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await listAuditEntries(trx, { limit, before }))
    return { entries, nextBefore: entries.length === limit ? entries[entries.length - 1]?.id ?? null : null }
  })

  fastify.get('/audit/:executionId', {
    schema: operation('audit', 'getExecutionAudit', 'An execution\'s audit entry', 'One execution\'s audit entry and the tool calls it made, in call order.', {
      params: ExecutionIdParams,
      response: { 200: json('The entry and its tool calls', ExecutionAudit, rl), ...errors([400, 401, 404, 429, 503], { 404: 'No audit entry for this execution in the caller\'s tenant (NOT_FOUND)' }) }
    })
  }, async (request) => {
    // RLS scopes the read: another tenant's execution is as absent as one that never ran.
    const found = await withTenant(fastify.db, request.tenant.tenantId, async (trx) => await getExecutionAudit(trx, request.params.executionId))
    if (found === undefined) throw new ServiceError('NOT_FOUND', { what: `No audit entry for execution ${request.params.executionId}` })
    return found
  })
}

export default auditRoutes
