import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { declarationFileSchema, sendDeclarationFile } from '../../schemas/declaration-file.ts'
import { operation } from '../../schemas/responses.ts'
import { ToolDeclarationCache } from '../../services/code-mode/tool-declarations.ts'

const toolDeclarationRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const cache = new ToolDeclarationCache()

  fastify.get('/tools.d.ts', {
    schema: operation('tools', 'getToolDeclarations', 'TypeScript declarations of the callable tools', 'A global declaration file for the tools this caller may call (permitted and enabled): one callTool overload per tool, and console, for an LLM\'s prompt or a type check. Send the ETag back as If-None-Match to get a 304 while nothing changed.', {
      ...declarationFileSchema
    })
  }, async (request, reply) => {
    const { tenantId, permissions } = request.tenant
    const callable = (await fastify.tools.list(tenantId))
      .filter((tool) => tool.enabled && permissions.includes(`tool:${tool.definition.name}`))
      .map(({ definition: { name, description, argsSchema, resultSchema } }) => ({ name, description, argsSchema, resultSchema }))
    // Per token: another caller's permissions give other declarations.
    return await sendDeclarationFile(request, reply, await cache.get(callable))
  })
}

export default toolDeclarationRoutes
