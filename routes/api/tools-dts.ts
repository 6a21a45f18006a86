import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { empty, errors, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { ToolDeclarationCache } from '../../services/code-mode/tool-declarations.ts'

/** Whether an If-None-Match header names this ETag (a list, weak forms, or `*`). */
function matchesEtag (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  return header.split(',').some((tag) => {
    const t = tag.trim()
    return t === '*' || t === etag || t === `W/${etag}`
  })
}

const toolDeclarationRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const cache = new ToolDeclarationCache()

  fastify.get('/tools.d.ts', {
    schema: operation('tools', 'getToolDeclarations', 'TypeScript declarations of the callable tools', 'A global declaration file for the tools this caller may call (permitted and enabled): one callTool overload per tool, and console, for an LLM\'s prompt or a type check. Send the ETag back as If-None-Match to get a 304 while nothing changed.', {
      headers: Type.Object({ 'if-none-match': Type.Optional(Type.String({ description: 'The ETag of the declarations the caller holds' })) }),
      response: {
        200: {
          description: 'The declarations',
          content: { 'text/plain': { schema: Type.String({ description: 'A TypeScript declaration file' }) } },
          headers: { etag: Type.String({ description: 'Names these declarations; send it as If-None-Match' }), ...rl }
        },
        304: empty('If-None-Match named the current ETag: the caller\'s copy is current', { etag: Type.String({ description: 'The current ETag' }) }),
        ...errors([401, 429, 503])
      }
    })
  }, async (request, reply) => {
    const { tenantId, permissions } = request.tenant
    const callable = (await fastify.tools.list(tenantId))
      .filter((tool) => tool.enabled && permissions.includes(`tool:${tool.definition.name}`))
      .map(({ definition: { name, description, argsSchema, resultSchema } }) => ({ name, description, argsSchema, resultSchema }))
    const { text, etag } = await cache.get(callable)
    // Per token: another caller's permissions give other declarations.
    void reply.header('etag', etag).header('cache-control', 'private, no-cache').header('vary', 'authorization')
    if (matchesEtag(request.headers['if-none-match'], etag)) return await reply.code(304).send(null)
    return await reply.type('text/plain; charset=utf-8').send(text)
  })
}

export default toolDeclarationRoutes
