import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors/index.ts'
import { ToolRateLimitSchema } from '../../services/tools/tool-settings.ts'
import { matchesSearch, searchWords } from '../../services/code-mode/tool-search.ts'

const Tool = Type.Object({
  name: Type.String(),
  description: Type.String(),
  argsSchema: Type.Unknown({ description: 'JSON Schema of the arguments' }),
  resultSchema: Type.Optional(Type.Unknown({ description: 'JSON Schema of the result, when the tool declares one' })),
  enabled: Type.Boolean({ description: 'Enabled in this tenant\'s registry' }),
  permitted: Type.Boolean({ description: 'The caller\'s token carries tool:<name>' }),
  rateLimit: Type.Union([ToolRateLimitSchema, Type.Null()])
})

const ToolsQuery = Type.Object({
  search: Type.Optional(Type.String({ maxLength: 500, description: 'Words (space-separated, case-insensitive) that must all appear in the tool\'s name or description' }))
}, { additionalProperties: false })

const toolRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/tools', {
    schema: {
      tags: ['execution'],
      summary: 'The tools a script can call, with this tenant\'s settings and the caller\'s permissions',
      querystring: ToolsQuery,
      response: { 200: Type.Object({ tools: Type.Array(Tool) }), 400: ErrorBody, 401: ErrorBody, 503: ErrorBody }
    }
  }, async (request) => {
    const { tenantId, permissions } = request.tenant
    const words = searchWords(request.query.search)
    const tools = (await fastify.tools.list(tenantId)).filter((tool) => matchesSearch(words, tool.definition))
    return {
      tools: tools.map((tool) => ({
        name: tool.definition.name,
        description: tool.definition.description,
        argsSchema: tool.definition.argsSchema,
        ...(tool.definition.resultSchema !== undefined ? { resultSchema: tool.definition.resultSchema } : {}),
        enabled: tool.enabled,
        permitted: permissions.includes(`tool:${tool.definition.name}`),
        rateLimit: tool.rateLimit
      }))
    }
  })
}

export default toolRoutes
