import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors.ts'
import { ToolRateLimitSchema } from '../../services/tools/tool-settings.ts'

const Tool = Type.Object({
  name: Type.String(),
  description: Type.String(),
  argsSchema: Type.Unknown({ description: 'JSON Schema of the arguments' }),
  enabled: Type.Boolean({ description: 'Enabled in this tenant\'s registry' }),
  permitted: Type.Boolean({ description: 'The caller\'s token carries tool:<name>' }),
  rateLimit: Type.Union([ToolRateLimitSchema, Type.Null()])
})

const toolRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/tools', {
    schema: {
      tags: ['execution'],
      summary: 'The tools a script can call, with this tenant\'s settings and the caller\'s permissions',
      response: { 200: Type.Object({ tools: Type.Array(Tool) }), 401: ErrorBody, 503: ErrorBody }
    }
  }, async (request) => {
    const { tenantId, permissions } = request.tenant
    const tools = await fastify.tools.list(tenantId)
    return {
      tools: tools.map((tool) => ({
        name: tool.definition.name,
        description: tool.definition.description,
        argsSchema: tool.definition.argsSchema,
        enabled: tool.enabled,
        permitted: permissions.includes(`tool:${tool.definition.name}`),
        rateLimit: tool.rateLimit
      }))
    }
  })
}

export default toolRoutes
