import { createPublicKey } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { ServiceError } from '../services/errors/index.ts'
import type { PerUserQuotas, TenantQuotas, Tier } from '../services/tenants/tiers.ts'
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
  /** The tenant's daily limits for each of its users (perUser); {} when none. */
  perUser: PerUserQuotas
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the bearer token and sets request.tenant. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /** authenticate, with auth-params its 401's WWW-Authenticate names first (/mcp's resource_metadata). */
    authenticateWithChallenge: (request: FastifyRequest, challenge: string) => Promise<void>
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

/** Why a token was refused: the `reason` of a 401 INVALID_TOKEN body and of its log line. */
export type TokenFailureReason = 'expired' | 'not_yet_valid' | 'missing_claim' | 'bad_signature' | 'malformed' | 'missing_bearer_prefix' | 'wrong_issuer' | 'wrong_audience'

interface TokenFailure { reason: TokenFailureReason, detail: string, claim?: string }

const HOW_TO_FIX = 'get a new token from your gateway'

// fast-jwt's error codes (its TokenError.codes), which @fastify/jwt's verify throws as they are.
const JWT_CODES = {
  expired: 'FAST_JWT_EXPIRED',
  inactive: 'FAST_JWT_INACTIVE',
  invalidSignature: 'FAST_JWT_INVALID_SIGNATURE',
  missingSignature: 'FAST_JWT_MISSING_SIGNATURE',
  invalidKey: 'FAST_JWT_INVALID_KEY',
  invalidAlgorithm: 'FAST_JWT_INVALID_ALGORITHM',
  missingRequiredClaim: 'FAST_JWT_MISSING_REQUIRED_CLAIM',
  invalidClaimValue: 'FAST_JWT_INVALID_CLAIM_VALUE',
  invalidClaimType: 'FAST_JWT_INVALID_CLAIM_TYPE'
} as const

/** fast-jwt's refusal as a reason and a message that says what to do. */
function tokenFailureOf (error: unknown, config: Config, algorithm: string): TokenFailure {
  const code = (error as { code?: unknown }).code
  const text = error instanceof Error ? error.message : ''
  const at = /at (\S+)\.$/.exec(text)?.[1] ?? 'an earlier time'
  switch (code) {
    case JWT_CODES.expired:
      return { reason: 'expired', detail: `The token expired at ${at}: ${HOW_TO_FIX}` }
    case JWT_CODES.inactive:
      return { reason: 'not_yet_valid', detail: `The token is not valid before ${at} (its nbf claim): wait until then, or check the issuer's clock` }
    case JWT_CODES.invalidSignature:
    case JWT_CODES.missingSignature:
    case JWT_CODES.invalidKey:
      return { reason: 'bad_signature', detail: `The token's signature does not verify with this service's ${algorithm} key: use a token signed by the issuer this service trusts` }
    case JWT_CODES.invalidAlgorithm:
      return { reason: 'bad_signature', detail: `The token is not signed with ${algorithm}, the only algorithm this service accepts: use a token signed by the issuer this service trusts` }
    case JWT_CODES.missingRequiredClaim: {
      const claim = /The (\S+) claim is required/.exec(text)?.[1] ?? 'exp'
      return { reason: 'missing_claim', claim, detail: missingClaimDetail(claim) }
    }
    case JWT_CODES.invalidClaimValue:
    case JWT_CODES.invalidClaimType:
      if (/\biss\b/.test(text)) return { reason: 'wrong_issuer', detail: `The token's iss claim is not ${JSON.stringify(config.JWT_ISSUER ?? '')}, the issuer this service accepts: ${HOW_TO_FIX}` }
      if (/\baud\b/.test(text)) return { reason: 'wrong_audience', detail: `The token's aud claim does not include ${JSON.stringify(config.JWT_AUDIENCE ?? '')}, the audience this service accepts: ${HOW_TO_FIX}` }
      return { reason: 'malformed', detail: `The token's ${/The (\S+) claim/.exec(text)?.[1] ?? 'date'} claim must be a number of seconds since 1970: ${HOW_TO_FIX}` }
    default:
      return { reason: 'malformed', detail: 'The bearer token is not a well-formed JWT (three base64url parts: header.payload.signature): send the token exactly as it was issued' }
  }
}

function missingClaimDetail (claim: string): string {
  const why = claim === 'exp' ? ' (JWT_REQUIRE_EXP: tokens must expire)' : ''
  return `The token has no ${claim} claim${why}: the issuer must include it; ${HOW_TO_FIX}`
}

/** What the claims lack once the signature holds (tenantId, userId or sub, permissions). */
function claimFailureOf (claims: unknown): TokenFailure {
  const record = (typeof claims === 'object' && claims !== null ? claims : {}) as Record<string, unknown>
  if (record.tenantId === undefined) return { reason: 'missing_claim', claim: 'tenantId', detail: missingClaimDetail('tenantId') }
  if (record.permissions === undefined) return { reason: 'missing_claim', claim: 'permissions', detail: missingClaimDetail('permissions') }
  if (record.userId === undefined && record.sub === undefined) return { reason: 'missing_claim', claim: 'userId', detail: 'The token has neither a userId nor a sub claim: the issuer must include one; get a new token from your gateway' }
  if (!Claims.Check(record)) {
    const first = Claims.Errors(record)[0]
    const claim = first?.instancePath.split('/')[1] ?? 'tenantId'
    const rule = claim === 'tenantId'
      ? 'tenantId must be 1 to 128 letters, digits, dots, underscores or hyphens, starting with a letter or digit'
      : claim === 'permissions' ? 'permissions must be an array of at most 1000 non-empty strings' : `${claim} must be a string of 1 to 256 characters`
    return { reason: 'malformed', claim, detail: `The token's ${claim} claim is not valid (${rule}): ${HOW_TO_FIX}` }
  }
  if (record.userId === undefined && record.sub === undefined) return { reason: 'missing_claim', claim: 'userId', detail: `The token has neither a userId nor a sub claim: the issuer must include one; ${HOW_TO_FIX}` }
  return { reason: 'malformed', detail: `The token's claims are not valid: ${HOW_TO_FIX}` }
}

/** RFC 6750 §3: an error_description is printable ASCII without `"` or `\`. */
function bearerChallenge (failure: TokenFailure | undefined, first: string | undefined): string {
  const head = `Bearer ${first === undefined ? '' : `${first}, `}realm="tenant-enclave"`
  if (failure === undefined) return head
  const description = failure.detail.replace(/[^\x20-\x7e]|["\\]/g, "'")
  return `${head}, error="invalid_token", error_description="${description}"`
}

function missingToken (request: FastifyRequest, challenge: string | undefined): ServiceError<'MISSING_TOKEN'> {
  request.log.info({ authFailure: 'missing_token' }, 'authentication failed: missing_token')
  return new ServiceError('MISSING_TOKEN', {}, { headers: { 'www-authenticate': bearerChallenge(undefined, challenge) }, reason: 'missing_token' })
}

function invalidToken (request: FastifyRequest, failure: TokenFailure, challenge: string | undefined): ServiceError<'INVALID_TOKEN'> {
  request.log.info({ authFailure: failure.reason, claim: failure.claim }, `authentication failed: ${failure.reason}`)
  return new ServiceError('INVALID_TOKEN', { detail: failure.detail }, {
    fields: { reason: failure.reason, ...(failure.claim !== undefined ? { claim: failure.claim } : {}) },
    headers: { 'www-authenticate': bearerChallenge(failure, challenge) },
    reason: failure.reason
  })
}

/** A token whose signature verified: its claims, and them again once they hold what a request needs (tenantId, userId or sub, permissions). */
interface VerifiedToken {
  claims: unknown
  checked: { tenantId: string, userId?: string, sub?: string, permissions: string[] } | undefined
}

const MAX_BLOCKED_ADDRESSES = 10_000
// Verified tokens remembered, and for how long at most (never past their own exp).
const VERIFIED_TOKENS = 1000
const VERIFIED_TOKEN_TTL_MS = 60_000
const AUTH_WINDOW_MS = 60_000

export default fp(async (fastify) => {
  const options = jwtOptions(fastify.config)
  await fastify.register(fastifyJwt, options)
  fastify.decorateRequest('tenant', null as unknown as TenantContext)
  const algorithm = (options.verify as { algorithms: string[] }).algorithms[0] as string
  const limit = fastify.config.AUTH_FAILURES_PER_MINUTE
  // Addresses over the failed-authentication limit, until their window ends: refused here before
  // any token is verified. The count itself is the LimitStore's (shared by every instance).
  const blocked = new Map<string, number>()
  // A client sends the same token on every request: once its signature and dates verify, its
  // claims are kept by the token's exact text, with whether they hold what a request needs, until
  // its exp or for a minute, the oldest dropped first. A token fast-jwt refuses is not kept.
  // (fast-jwt's own cache keys by the token's SHA-256: a hash of the token on every request.)
  const verified = new Map<string, VerifiedToken & { until: number }>()
  const verifyToken = (token: string): VerifiedToken => {
    const now = Date.now()
    const hit = verified.get(token)
    if (hit !== undefined) {
      if (hit.until > now) return hit
      verified.delete(token)
    }
    const claims = fastify.jwt.verify(token)
    const exp = (claims as { exp?: unknown }).exp
    const until = Math.min(now + VERIFIED_TOKEN_TTL_MS, typeof exp === 'number' ? exp * 1000 : Infinity)
    const checked = Claims.Check(claims) && (claims.userId ?? claims.sub) !== undefined ? claims : undefined
    if (verified.size >= VERIFIED_TOKENS) verified.delete(verified.keys().next().value as string)
    const entry = { claims, checked, until }
    verified.set(token, entry)
    return entry
  }

  const tooManyFailures = (until: number): ServiceError<'RATE_LIMITED'> => {
    const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000))
    return new ServiceError('RATE_LIMITED', { what: `at most ${limit} failed authentications per minute from one address`, after: `${seconds} seconds` }, {
      fields: { limit },
      retryAfterSeconds: seconds,
      reason: 'auth_failures'
    })
  }

  /** Counts one failed authentication of this address; a refusal when it is over the limit. */
  const countFailure = async (request: FastifyRequest): Promise<ServiceError<'RATE_LIMITED'> | undefined> => {
    const now = Date.now()
    const windowStart = Math.floor(now / AUTH_WINDOW_MS) * AUTH_WINDOW_MS
    const until = windowStart + AUTH_WINDOW_MS
    let allowed: boolean
    try {
      allowed = (await fastify.store.consume(`tenant-enclave:auth-failures:${request.ip}:${windowStart}`, 1, limit, until - now + 1000)).allowed
    } catch (err) {
      // Like the request rate limit, this one fails open: the token was refused anyway.
      request.log.warn({ err }, 'failed authentications cannot be counted right now')
      return undefined
    }
    if (allowed) return undefined
    if (blocked.size >= MAX_BLOCKED_ADDRESSES) for (const [address, end] of blocked) if (end <= now || blocked.size >= MAX_BLOCKED_ADDRESSES) blocked.delete(address)
    blocked.set(request.ip, until)
    request.log.warn({ authFailure: 'rate_limited', limit }, 'too many failed authentications from this address')
    return tooManyFailures(until)
  }

  const refuse = async (request: FastifyRequest, failure: TokenFailure | undefined, challenge?: string): Promise<never> => {
    throw (await countFailure(request)) ?? (failure === undefined ? missingToken(request, challenge) : invalidToken(request, failure, challenge))
  }

  const authenticate = async (request: FastifyRequest, challenge?: string): Promise<void> => {
    const until = blocked.get(request.ip)
    if (until !== undefined) {
      if (until > Date.now()) throw tooManyFailures(until)
      blocked.delete(request.ip)
    }
    const header = request.headers.authorization
    if (header === undefined || header.trim() === '') return await refuse(request, undefined, challenge)
    // Servers trim a header's trailing spaces: `Bearer ` arrives as `Bearer`.
    if (/^Bearer\s*$/i.test(header)) return await refuse(request, { reason: 'malformed', detail: 'The Authorization header says Bearer but carries no token: send Authorization: Bearer <token>' }, challenge)
    const match = /^Bearer +(\S+)\s*$/i.exec(header)
    if (match === null && /^Bearer\s/i.test(header)) {
      return await refuse(request, { reason: 'malformed', detail: 'The Authorization header must be Bearer and one token, with no spaces inside the token: send Authorization: Bearer <token>' }, challenge)
    }
    if (match === null) {
      return await refuse(request, { reason: 'missing_bearer_prefix', detail: 'The Authorization header must be the word Bearer, a space, then the token: send Authorization: Bearer <token>' }, challenge)
    }
    const token = match[1] as string
    let verifiedToken: VerifiedToken
    try {
      verifiedToken = verifyToken(token)
    } catch (err) {
      return await refuse(request, tokenFailureOf(err, fastify.config, algorithm), challenge)
    }
    const claims = verifiedToken.checked
    if (claims === undefined) return await refuse(request, claimFailureOf(verifiedToken.claims), challenge)
    const userId = (claims.userId ?? claims.sub) as string
    const record = await fastify.tenants.get(claims.tenantId)
    request.tenant = {
      tenantId: claims.tenantId,
      userId,
      permissions: claims.permissions,
      tier: record.tier,
      quotas: record.quotas,
      perUser: record.perUser
    }
  }
  fastify.decorate('authenticate', async (request: FastifyRequest) => { await authenticate(request) })
  fastify.decorate('authenticateWithChallenge', authenticate)

  fastify.decorate('requireAdmin', async (request: FastifyRequest) => {
    if (!request.tenant.permissions.includes('admin')) throw new ServiceError('FORBIDDEN', { reason: 'the admin permission is required' })
  })
}, { name: 'auth', dependencies: ['config', 'tenants', 'store'] })
