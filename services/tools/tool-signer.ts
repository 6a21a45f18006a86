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
  /**
   * As `sign`, with the signature computed on libuv's thread pool: the calling thread goes on
   * (with the request the assertion is for) and waits only where the token is written.
   */
  signLater: (claims: AssertionClaims, nowMs?: number) => Promise<SignedAssertion>
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
  const unsigned = (claims: AssertionClaims, nowMs: number): { signingInput: string, expiresAtMs: number } => {
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
    return { signingInput: `${header}.${payload}`, expiresAtMs: exp * 1000 }
  }
  return {
    kid,
    publicJwk,
    // JWS compact form (RFC 7515) signed by node:crypto directly: ES256 is ECDSA P-256 over
    // SHA-256 with the signature as r‖s (ieee-p1363). jose's sign goes through WebCrypto's
    // async path, which measured ~4x slower per call (bench:tools); jose still exports the
    // JWK and computes the kid, and the tests verify these tokens with jose's jwtVerify.
    sign: (claims, nowMs = Date.now()) => {
      const { signingInput, expiresAtMs } = unsigned(claims, nowMs)
      const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' })
      return { token: `${signingInput}.${signature.toString('base64url')}`, expiresAtMs }
    },
    signLater: async (claims, nowMs = Date.now()) => {
      const { signingInput, expiresAtMs } = unsigned(claims, nowMs)
      return await new Promise((resolve, reject) => {
        sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' }, (err, signature) => {
          if (err !== null) reject(err)
          else resolve({ token: `${signingInput}.${signature.toString('base64url')}`, expiresAtMs })
        })
      })
    }
  }
}
