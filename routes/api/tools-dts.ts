import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors/index.ts'
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
    schema: {
      tags: ['execution'],
      summary: 'TypeScript declarations of the tools this caller may call (permitted and enabled), for an LLM\'s prompt or a type check',
      produces: ['text/plain'],
      response: {
        200: Type.String({ description: 'A global declaration file: one callTool overload per callable tool, and console' }),
        304: Type.Null({ description: 'If-None-Match named the current ETag' }),
        401: ErrorBody,
        503: ErrorBody
      }
    }
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
