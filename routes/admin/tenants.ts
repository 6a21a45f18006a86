import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors/index.ts'
import { TENANT_ID_PATTERN, TenantIdSchema } from '../../schemas/tenant.ts'
import { QuotaOverridesSchema, TenantQuotasSchema, TierSchema } from '../../services/tenants/tiers.ts'

export const TenantParams = Type.Object({ tenantId: TenantIdSchema })

const TenantBody = Type.Object({
  tier: TierSchema,
  name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()])),
  quotaOverrides: Type.Optional(QuotaOverridesSchema)
}, { additionalProperties: false })

const Tenant = Type.Object({
  tenantId: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  tier: TierSchema,
  quotaOverrides: QuotaOverridesSchema,
  quotas: TenantQuotasSchema,
  registered: Type.Boolean({ description: 'false when the tenant has no row and runs on the free tier' }),
  createdAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  updatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
})

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
})

const adminTenantRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/tenants', {
    schema: {
      tags: ['admin'],
      summary: 'Registered tenants, alphabetical by id, filtered by a substring of id or name, a page at a time',
      querystring: TenantListQuery,
      response: { 200: TenantList, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody }
    }
  }, async (request) => await fastify.tenants.list({ ...request.query, limit: request.query.limit ?? 50 }))

  fastify.put('/tenants/:tenantId', {
    schema: {
      tags: ['admin'],
      summary: 'Create or update a tenant: tier, name and quota overrides',
      params: TenantParams,
      body: TenantBody,
      response: { 200: Tenant, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody }
    }
  }, async (request) => {
    const record = await fastify.tenants.upsert(request.params.tenantId, request.body)
    await fastify.announceTenantChange(request.params.tenantId)
    request.log.info({ targetTenantId: request.params.tenantId, tier: record.tier }, 'tenant updated')
    return record
  })

  fastify.get('/tenants/:tenantId', {
    schema: {
      tags: ['admin'],
      summary: 'A tenant\'s tier, overrides and effective quotas (free when it has no row)',
      params: TenantParams,
      response: { 200: Tenant, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody }
    }
  }, async (request) => await fastify.tenants.get(request.params.tenantId))
}

export default adminTenantRoutes
