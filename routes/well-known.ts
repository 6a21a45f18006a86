import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../schemas/responses.ts'

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
}, { $id: 'Jwks' })

/** Public keys of the service: upstreams verify platform tool assertions with them. No auth. */
const wellKnownRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/.well-known/jwks.json', {
    schema: operation('health', 'getJwks', 'The service\'s public signing keys', 'A JWKS: upstreams verify the assertions platform tool calls carry with these keys. Public; cacheable for five minutes.', {
      response: { 200: json('The public keys', Jwks, rl), ...errors([429]) }
    })
  }, async (_request, reply) => {
    // Short caching: a new key (restart without TOOL_SIGNING_KEY) is picked up within minutes.
    void reply.header('cache-control', 'public, max-age=300')
    return fastify.serviceKeys.jwks()
  })
}

export default wellKnownRoutes
