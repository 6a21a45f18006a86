import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { empty, errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { ApprovalModeSchema, ToolRateLimitSchema } from '../../services/tools/tool-settings.ts'
import { TenantIdSchema } from '../../schemas/tenant.ts'
import { PLATFORM_TOOL_NAME_PATTERN } from '../../services/tools/platform-tools.ts'

// Platform tools' names (docs/api.md) include every built-in's.
const TOOL_NAME_PATTERN = PLATFORM_TOOL_NAME_PATTERN

const Params = Type.Object({
  tenantId: TenantIdSchema,
  tool: Type.String({ pattern: TOOL_NAME_PATTERN, maxLength: 128 })
})

// Each field left out keeps what is stored (a new setting starts from the tool's defaults).
const ToolSettingBody = Type.Object({
  enabled: Type.Optional(Type.Boolean()),
  rateLimit: Type.Optional(Type.Union([ToolRateLimitSchema, Type.Null()])),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  approval: Type.Optional(Type.Union([ApprovalModeSchema, Type.Null()], { description: 'Overrides the tool\'s approval default; null returns to it' }))
}, { additionalProperties: false, minProperties: 1, description: 'At least one field' })

const ToolSetting = Type.Object({
  tool: Type.String(),
  enabled: Type.Boolean(),
  rateLimit: Type.Union([ToolRateLimitSchema, Type.Null()]),
  config: Type.Record(Type.String(), Type.Unknown()),
  approval: Type.Union([ApprovalModeSchema, Type.Null()], { description: 'The tenant\'s override; null: the tool\'s default' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { $id: 'TenantToolSetting' })

const adminToolRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.put('/tenants/:tenantId/tools/:tool', {
    schema: operation('admin', 'putTenantToolSetting', 'Set a tenant\'s tool setting', 'Enables or disables a tool for a tenant, with an optional rate limit, config and approval override; fields left out keep what is stored.', {
      params: Params,
      body: ToolSettingBody,
      response: { 200: json('The setting as stored', ToolSetting, rl), ...errors([400, 401, 403, 404, 429, 503], { 404: 'No such tenant or tool (NOT_FOUND)' }) }
    })
  }, async (request) => {
    const { tenantId, tool } = request.params
    await fastify.assertKnownTool(tool)
    return await fastify.tools.putSetting(tenantId, tool, request.body)
  })

  fastify.delete('/tenants/:tenantId/tools/:tool', {
    schema: operation('admin', 'deleteTenantToolSetting', 'Remove a tenant\'s tool setting', 'Removes a tenant\'s setting for a tool: it returns to its default.', {
      params: Params,
      response: { 204: empty('Removed', rl), ...errors([400, 401, 403, 404, 429, 503], { 404: 'No such tenant or tool (NOT_FOUND)' }) }
    })
  }, async (request, reply) => {
    const { tenantId, tool } = request.params
    await fastify.assertKnownTool(tool)
    await fastify.tools.deleteSetting(tenantId, tool)
    return await reply.code(204).send(null)
  })
}

export default adminToolRoutes
