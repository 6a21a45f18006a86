import { createPublicKey } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { ServiceError } from '../services/errors/index.ts'
import type { TenantQuotas, Tier } from '../services/tenants/tiers.ts'
import { TenantIdSchema } from '../schemas/tenant.ts'
import type { Config } from './config.ts'

// What a token must carry. userId may come as `sub` instead.
const Claims = Compile(Type.Object({
  tenantId: TenantIdSchema,
  userId: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  sub: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  permissions: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 1000 })
}))

export interface TenantContext {
  tenantId: string
  userId: string
  permissions: string[]
  tier: Tier
  quotas: TenantQuotas
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the bearer token and sets request.tenant. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /** preHandler hook for /admin/*: the token must carry the `admin` permission. */
    requireAdmin: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    tenant: TenantContext
  }
}

/** What a token must say besides its signature: exp (unless turned off), and iss/aud when set. */
function verifyOptions (config: Config): FastifyJWTOptions['verify'] {
  const requiredClaims = [
    ...(config.JWT_REQUIRE_EXP ? ['exp'] : []),
    // fast-jwt checks iss/aud only when the token has them: requiring them closes that gap.
    ...(config.JWT_ISSUER !== undefined ? ['iss'] : []),
    ...(config.JWT_AUDIENCE !== undefined ? ['aud'] : [])
  ]
  return {
    requiredClaims,
    // Verified tokens are remembered (LRU, keyed by the token's hash; never past their own exp,
    // failures not cached): a client sends the same token on every request, and checking its
    // signature each time was a few percent of a trivial request's CPU.
    cache: 1000,
    cacheTTL: 60_000,
    ...(config.JWT_ISSUER !== undefined ? { allowedIss: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE !== undefined ? { allowedAud: config.JWT_AUDIENCE } : {})
  }
}

function jwtOptions (config: Config): FastifyJWTOptions {
  const verify = verifyOptions(config)
  if (config.JWT_SECRET !== undefined) {
    return { secret: config.JWT_SECRET, verify: { ...verify, algorithms: ['HS256'] } }
  }
  // An asymmetric key only verifies; the gateway holds the private key.
  const publicKey = config.JWT_PUBLIC_KEY as string
  const keyType = createPublicKey(publicKey).asymmetricKeyType
  const algorithm = keyType === 'ec' ? 'ES256' : 'RS256'
  return { secret: { public: publicKey }, verify: { ...verify, algorithms: [algorithm] } }
}

export default fp(async (fastify) => {
  await fastify.register(fastifyJwt, jwtOptions(fastify.config))
  fastify.decorateRequest('tenant', null as unknown as TenantContext)

  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    const header = request.headers.authorization
    if (header === undefined || header.trim() === '') throw new ServiceError('UNAUTHORIZED')
    let claims: unknown
    try {
      claims = await request.jwtVerify()
    } catch {
      throw new ServiceError('INVALID_TOKEN')
    }
    if (!Claims.Check(claims)) throw new ServiceError('INVALID_TOKEN')
    const userId = claims.userId ?? claims.sub
    if (userId === undefined) throw new ServiceError('INVALID_TOKEN')
    const record = await fastify.tenants.get(claims.tenantId)
    request.tenant = {
      tenantId: claims.tenantId,
      userId,
      permissions: claims.permissions,
      tier: record.tier,
      quotas: record.quotas
    }
  })

  fastify.decorate('requireAdmin', async (request: FastifyRequest) => {
    if (!request.tenant.permissions.includes('admin')) throw new ServiceError('FORBIDDEN', { reason: 'the admin permission is required' })
  })
}, { name: 'auth', dependencies: ['config', 'tenants'] })
