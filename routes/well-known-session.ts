import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../schemas/responses.ts'

const Jwk = Type.Object({
  kty: Type.Literal('EC'),
  crv: Type.Literal('P-256'),
  x: Type.String(),
  y: Type.String(),
  use: Type.Literal('sig'),
  alg: Type.Literal('ES256'),
  kid: Type.String()
})
const SessionInfo = Type.Object({
  kid: Type.String({ description: 'The identity key\'s kid in /.well-known/jwks.json' }),
  thumbprint: Type.String({ description: 'RFC 7638 SHA-256 thumbprint of the identity key (base64url): pin this' }),
  algorithms: Type.Object({
    protocol: Type.Literal('tenant-enclave/v1'),
    keyAgreement: Type.Literal('ECDH-P256'),
    kdf: Type.Literal('HKDF-SHA256'),
    cipher: Type.Literal('A256GCM'),
    signature: Type.Literal('ES256')
  }),
  jwk: Jwk
}, { $id: 'SessionInfo' })

/**
 * What a session client needs before it sends anything: the identity key and its thumbprint.
 * Fetching it proves nothing (an intermediary can answer instead): clients compare the thumbprint
 * they compute from `jwk` with the one they pinned.
 */
const wellKnownSessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const identity = fastify.sessionIdentity
  const body = {
    kid: identity.kid,
    thumbprint: identity.thumbprint,
    algorithms: { protocol: 'tenant-enclave/v1', keyAgreement: 'ECDH-P256', kdf: 'HKDF-SHA256', cipher: 'A256GCM', signature: 'ES256' },
    jwk: identity.publicJwk
  } as const
  fastify.get('/.well-known/enclave-session.json', {
    schema: operation('sessions', 'getSessionInfo', 'The encrypted sessions\' identity key', 'The identity key that signs session openings, its thumbprint (pin it) and the algorithms of the session protocol. Public.', {
      response: { 200: json('The identity key and algorithms', SessionInfo, rl), ...errors([429]) }
    })
  }, async () => body)
}

export default wellKnownSessionRoutes
