import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { ServiceError } from '../../services/errors/index.ts'
import { TENANT_ID_PATTERN, TenantIdSchema } from '../../schemas/tenant.ts'
import { PerUserQuotasSchema, QuotaOverridesSchema, TenantQuotasSchema, TierSchema } from '../../services/tenants/tiers.ts'

export const TenantParams = Type.Object({ tenantId: TenantIdSchema })

const SandboxModuleNames = Type.Union([
  Type.Array(Type.String({ minLength: 1, maxLength: 214 }), { maxItems: 100, uniqueItems: true }),
  Type.Null()
], { description: 'The sandbox modules (GET /api/modules) this tenant\'s scripts may import; null or absent: all of them. A list can only narrow what the build offers.' })

const TenantBody = Type.Object({
  tier: TierSchema,
  name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()])),
  quotaOverrides: Type.Optional(QuotaOverridesSchema),
  perUser: Type.Optional(PerUserQuotasSchema),
  sandboxModules: Type.Optional(SandboxModuleNames)
}, { $id: 'TenantUpdate', additionalProperties: false })

const Tenant = Type.Object({
  tenantId: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  tier: TierSchema,
  quotaOverrides: QuotaOverridesSchema,
  quotas: TenantQuotasSchema,
  perUser: PerUserQuotasSchema,
  sandboxModules: SandboxModuleNames,
  registered: Type.Boolean({ description: 'false when the tenant has no row and runs on the free tier' }),
  createdAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  updatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
}, { $id: 'Tenant' })

const TenantListQuery = Type.Object({
  search: Type.Optional(Type.String({ maxLength: 200, description: 'A case-insensitive substring of the tenant id or name' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
  after: Type.Optional(Type.String({ pattern: TENANT_ID_PATTERN, description: 'nextAfter of the previous page: the list is alphabetical by tenant id' }))
}, { additionalProperties: false })

const TenantList = Type.Object({
  tenants: Type.Array(Type.Object({
    tenantId: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    tier: TierSchema,
    createdAt: Type.String({ format: 'date-time' })
  })),
  nextAfter: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `after` for the next page; null on the last one' })
}, { $id: 'TenantPage' })

const adminTenantRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/tenants', {
    schema: operation('admin', 'listTenants', 'List tenants', 'Registered tenants, alphabetical by id, filtered by a substring of id or name, a page at a time (pass `nextAfter` as `after`).', {
      querystring: TenantListQuery,
      response: { 200: json('A page of tenants', TenantList, rl), ...errors([400, 401, 403, 429, 503]) }
    })
  }, async (request) => await fastify.tenants.list({ ...request.query, limit: request.query.limit ?? 50 }))

  fastify.put('/tenants/:tenantId', {
    schema: operation('admin', 'putTenant', 'Create or update a tenant', 'Sets a tenant\'s tier, name, quota overrides, per-user daily limits (`perUser`; absent: none) and the sandbox modules its scripts may import (`sandboxModules`; absent: all); every instance picks the change up at once.', {
      params: TenantParams,
      body: TenantBody,
      response: { 200: json('The tenant as stored, with its effective quotas', Tenant, rl), ...errors([400, 401, 403, 429, 503]) }
    })
  }, async (request) => {
    const unknown = (request.body.sandboxModules ?? []).filter((name) => !fastify.sandboxModules.names.includes(name))
    if (unknown.length > 0) throw new ServiceError('BAD_REQUEST', { detail: `sandboxModules: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not a sandbox module; the build offers ${fastify.sandboxModules.names.join(', ') || 'none'}` })
    const record = await fastify.tenants.upsert(request.params.tenantId, request.body)
    await fastify.announceTenantChange(request.params.tenantId)
    request.log.info({ targetTenantId: request.params.tenantId, tier: record.tier }, 'tenant updated')
    return record
  })

  fastify.get('/tenants/:tenantId', {
    schema: operation('admin', 'getTenant', 'Get a tenant', 'A tenant\'s tier, overrides and effective quotas (the free tier when it has no row).', {
      params: TenantParams,
      response: { 200: json('The tenant', Tenant, rl), ...errors([400, 401, 403, 429, 503]) }
    })
  }, async (request) => await fastify.tenants.get(request.params.tenantId))
}

export default adminTenantRoutes
