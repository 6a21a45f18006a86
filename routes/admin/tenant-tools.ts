import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors/index.ts'
import { ToolRateLimitSchema } from '../../services/tools/tool-settings.ts'
import { TenantIdSchema } from '../../schemas/tenant.ts'
import { PLATFORM_TOOL_NAME_PATTERN } from '../../services/tools/platform-tools.ts'

// Platform tools' names (docs/api.md) include every built-in's.
const TOOL_NAME_PATTERN = PLATFORM_TOOL_NAME_PATTERN

const Params = Type.Object({
  tenantId: TenantIdSchema,
  tool: Type.String({ pattern: TOOL_NAME_PATTERN, maxLength: 128 })
})

const ToolSettingBody = Type.Object({
  enabled: Type.Boolean(),
  rateLimit: Type.Optional(Type.Union([ToolRateLimitSchema, Type.Null()])),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown()))
}, { additionalProperties: false })

const ToolSetting = Type.Object({
  tool: Type.String(),
  enabled: Type.Boolean(),
  rateLimit: Type.Union([ToolRateLimitSchema, Type.Null()]),
  config: Type.Record(Type.String(), Type.Unknown()),
  updatedAt: Type.String({ format: 'date-time' })
})

const adminToolRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.put('/tenants/:tenantId/tools/:tool', {
    schema: {
      tags: ['admin'],
      summary: 'Enable or disable a tool for a tenant, with an optional rate limit and config',
      params: Params,
      body: ToolSettingBody,
      response: { 200: ToolSetting, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody }
    }
  }, async (request) => {
    const { tenantId, tool } = request.params
    await fastify.assertKnownTool(tool)
    return await fastify.tools.putSetting(tenantId, tool, request.body)
  })

  fastify.delete('/tenants/:tenantId/tools/:tool', {
    schema: {
      tags: ['admin'],
      summary: 'Remove a tenant\'s setting for a tool: it returns to its default',
      params: Params,
      response: { 204: Type.Null(), 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody }
    }
  }, async (request, reply) => {
    const { tenantId, tool } = request.params
    await fastify.assertKnownTool(tool)
    await fastify.tools.deleteSetting(tenantId, tool)
    return await reply.code(204).send(null)
  })
}

export default adminToolRoutes
