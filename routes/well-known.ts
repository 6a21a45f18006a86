import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const Jwks = Type.Object({
  keys: Type.Array(Type.Object({
    kty: Type.String(),
    kid: Type.String(),
    use: Type.Optional(Type.String()),
    alg: Type.Optional(Type.String()),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    y: Type.Optional(Type.String()),
    n: Type.Optional(Type.String()),
    e: Type.Optional(Type.String())
  }))
})

/** Public keys of the service: upstreams verify platform tool assertions with them. No auth. */
const wellKnownRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/.well-known/jwks.json', {
    schema: {
      tags: ['health'],
      summary: 'The service\'s public signing keys (JWKS): verify platform tool assertions with them',
      response: { 200: Jwks }
    }
  }, async (_request, reply) => {
    // Short caching: a new key (restart without TOOL_SIGNING_KEY) is picked up within minutes.
    void reply.header('cache-control', 'public, max-age=300')
    return fastify.serviceKeys.jwks()
  })
}

export default wellKnownRoutes
