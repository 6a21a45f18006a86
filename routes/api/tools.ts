import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
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
}, { $id: 'Tool', description: 'A tool a script can call with callTool(name, args)' })

const ToolsQuery = Type.Object({
  search: Type.Optional(Type.String({ maxLength: 500, description: 'Words (space-separated, case-insensitive) that must all appear in the tool\'s name or description' }))
}, { additionalProperties: false })

const toolRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/tools', {
    schema: operation('tools', 'listTools', 'List tools', 'The tools a script can call, with this tenant\'s settings and the caller\'s permissions; `search` filters by words in the name or description.', {
      querystring: ToolsQuery,
      response: { 200: json('The tools', Type.Object({ tools: Type.Array(Tool) }, { $id: 'ToolList' }), rl), ...errors([400, 401, 429, 503]) }
    })
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
