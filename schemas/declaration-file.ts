import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { empty, errors, RATE_LIMIT_HEADERS as rl } from './responses.ts'

/** The request headers and responses of a TypeScript declaration file served with an ETag. */
export const declarationFileSchema = {
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
}

/** Whether an If-None-Match header names this ETag (a list, weak forms, or `*`). */
function matchesEtag (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  return header.split(',').some((tag) => {
    const t = tag.trim()
    return t === '*' || t === etag || t === `W/${etag}`
  })
}

/** Sends the declarations, or 304 when the caller holds them; private per token (permissions differ). */
export async function sendDeclarationFile (request: FastifyRequest, reply: FastifyReply, { text, etag }: { text: string, etag: string }): Promise<FastifyReply> {
  void reply.header('etag', etag).header('cache-control', 'private, no-cache').header('vary', 'authorization')
  if (matchesEtag(request.headers['if-none-match'], etag)) return await reply.code(304).send(null)
  return await reply.type('text/plain; charset=utf-8').send(text)
}
