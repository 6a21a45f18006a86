import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose'

/** What an upstream learns about a call: who, for which tenant, in which run, through which tool. */
export interface AssertionClaims {
  audience: string
  userId: string
  tenantId: string
  executionId: string
  tool: string
}

export const ASSERTION_TTL_SECONDS = 60

/** A signed assertion and when it stops being valid (its `exp`, in epoch ms). */
export interface SignedAssertion {
  token: string
  expiresAtMs: number
}

/** Signs the tenant assertion sent to platform tools (ES256, `kid` = the key's JWK thumbprint). */
export interface ToolSigner {
  readonly kid: string
  readonly publicJwk: JWK
  /** A new assertion (new `jti`) issued at `nowMs` (default: now). Synchronous: node:crypto signs in place. */
  sign: (claims: AssertionClaims, nowMs?: number) => SignedAssertion
}

/**
 * The signer for `pem` (TOOL_SIGNING_KEY, a P-256 private key), or for a key generated now,
 * which lasts as long as this process (upstreams then refetch the JWKS after a restart).
 */
export async function createToolSigner (issuer: string, pem?: string): Promise<ToolSigner> {
  const privateKey: KeyObject = pem === undefined
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    : createPrivateKey(pem)
  const jwk = await exportJWK(createPublicKey(privateKey))
  const kid = await calculateJwkThumbprint(jwk)
  const publicJwk: JWK = { ...jwk, kid, alg: 'ES256', use: 'sig' }
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid, typ: 'JWT' })).toString('base64url')
  return {
    kid,
    publicJwk,
    // JWS compact form (RFC 7515) signed by node:crypto directly: ES256 is ECDSA P-256 over
    // SHA-256 with the signature as r‖s (ieee-p1363). jose's sign goes through WebCrypto's
    // async path, which measured ~4x slower per call (bench:tools); jose still exports the
    // JWK and computes the kid, and the tests verify these tokens with jose's jwtVerify.
    sign: (claims, nowMs = Date.now()) => {
      const iat = Math.floor(nowMs / 1000)
      const exp = iat + ASSERTION_TTL_SECONDS
      const payload = Buffer.from(JSON.stringify({
        tenantId: claims.tenantId,
        executionId: claims.executionId,
        tool: claims.tool,
        iss: issuer,
        aud: claims.audience,
        sub: claims.userId,
        jti: randomUUID(),
        iat,
        exp
      })).toString('base64url')
      const signingInput = `${header}.${payload}`
      const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' })
      return { token: `${signingInput}.${signature.toString('base64url')}`, expiresAtMs: exp * 1000 }
    }
  }
}

export interface AssertionCacheOptions {
  /** An assertion is reused only while it has more than this left (ms). Default 30 s of its 60. */
  minRemainingMs?: number
  /** Most assertions kept; the oldest goes first. Default 10,000. */
  maxEntries?: number
  /** The clock, in ms; tests pass a fake one. Default Date.now. */
  now?: () => number
}

/**
 * One signed assertion per (tenant, user, execution, tool, audience), reused for that run's
 * further calls of that tool while it has more than `minRemainingMs` left (default 30 s of its
 * 60 s), then replaced by a new one.
 *
 * Why: the ES256 signature was the largest single cost of an HTTP tool call (~0.06-0.1 ms of
 * the gateway's ~0.5 ms, bench:tools), and a script typically calls the same tool many times in
 * one run. What an upstream sees does not change: every claim is the one a fresh signature
 * would carry (the key is every claim but jti/iat/exp), so no two tenants, users, runs, tools
 * or upstreams ever share one; an assertion is never sent with less than `minRemainingMs` of
 * life; `jti` now identifies the assertion, not the call (the per-call identity is the
 * `idempotency-key: <executionId>:<call index>` header, unchanged).
 */
export class AssertionCache {
  private readonly signer: ToolSigner
  private readonly entries = new Map<string, SignedAssertion>()
  private readonly minRemainingMs: number
  private readonly maxEntries: number
  private readonly now: () => number

  constructor (signer: ToolSigner, options: AssertionCacheOptions = {}) {
    this.signer = signer
    this.minRemainingMs = options.minRemainingMs ?? 30_000
    this.maxEntries = options.maxEntries ?? 10_000
    this.now = options.now ?? Date.now
  }

  /** The bearer token for `claims`: a cached one with enough life left, or a new one. */
  assertion (claims: AssertionClaims): string {
    // A JSON array cannot be ambiguous, whatever characters the ids hold.
    const key = JSON.stringify([claims.tenantId, claims.userId, claims.executionId, claims.tool, claims.audience])
    const now = this.now()
    const hit = this.entries.get(key)
    if (hit !== undefined) {
      if (hit.expiresAtMs - now > this.minRemainingMs) return hit.token
      this.entries.delete(key)
    }
    const signed = this.signer.sign(claims, now)
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string)
    this.entries.set(key, signed)
    return signed.token
  }

  /** Assertions held now (tests, metrics). */
  get size (): number {
    return this.entries.size
  }
}
