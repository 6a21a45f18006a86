import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { loadIdentityKey, type IdentityJwk, type SessionIdentity } from '../services/sessions/identity-key.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The long-term P-256 key that signs session handshakes; clients pin its thumbprint. */
    sessionIdentity: SessionIdentity
  }
}

/** The identity key's public JWK (`use: "sig"`, kid), for /.well-known/jwks.json. */
export function sessionIdentityJwk (fastify: FastifyInstance): IdentityJwk {
  return fastify.sessionIdentity.publicJwk
}

export default fp(async (fastify) => {
  const identity = loadIdentityKey(fastify.config.SESSION_IDENTITY_KEY)
  // Every instance must sign with the same key, or a client pinned to one refuses the others.
  if (identity.generated && fastify.config.REDIS_URL !== undefined) {
    fastify.log.warn({ thumbprint: identity.thumbprint }, 'SESSION_IDENTITY_KEY is not set: this instance signs sessions with a key of its own, which clients cannot pin across restarts or instances')
  }
  fastify.decorate('sessionIdentity', identity)
  // /.well-known/jwks.json belongs to the service-keys plugin (platform tools); when it is loaded
  // first, the identity key is published there beside the tool signing key.
  const serviceKeys = (fastify as unknown as { serviceKeys?: { addPublicJwk?: (jwk: IdentityJwk) => void } }).serviceKeys
  serviceKeys?.addPublicJwk?.(identity.publicJwk)
}, { name: 'session-identity', dependencies: ['config'] })
