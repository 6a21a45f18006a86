import fp from 'fastify-plugin'
import type { JWK } from 'jose'
import { createToolSigner, type ToolSigner } from '../services/tools/tool-signer.ts'

/** A published key: public, with its `kid`. */
export type PublicJwk = JWK & { kty: string, kid: string }

/** The service's public keys, as served at /.well-known/jwks.json. */
export interface ServiceKeys {
  jwks: () => { keys: PublicJwk[] }
  /** Publishes one more public key (another signer of this service); same `kid` replaces. */
  addPublicJwk: (jwk: JWK) => void
  /** Signs the tenant assertions platform tools receive. */
  toolSigner: ToolSigner
}

declare module 'fastify' {
  interface FastifyInstance {
    serviceKeys: ServiceKeys
  }
}

export default fp(async (fastify) => {
  const toolSigner = await createToolSigner(fastify.config.SERVICE_ISSUER, fastify.config.TOOL_SIGNING_KEY)
  const keys = new Map<string, PublicJwk>([[toolSigner.kid, { ...toolSigner.publicJwk, kty: 'EC', kid: toolSigner.kid }]])
  fastify.decorate('serviceKeys', {
    jwks: () => ({ keys: [...keys.values()] }),
    addPublicJwk: (jwk: JWK) => {
      if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new Error('a published key needs a kid')
      if ('d' in jwk) throw new Error('refusing to publish a private key')
      if (typeof jwk.kty !== 'string') throw new Error('a published key needs a kty')
      keys.set(jwk.kid, { ...jwk, kty: jwk.kty, kid: jwk.kid })
    },
    toolSigner
  })
  fastify.log.info({ kid: toolSigner.kid, generated: fastify.config.TOOL_SIGNING_KEY === undefined }, 'platform tool assertions signed with ES256')
}, { name: 'service-keys', dependencies: ['config'] })
