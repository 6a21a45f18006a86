import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { SignJWT, calculateJwkThumbprint, exportJWK, type JWK } from 'jose'

/** What an upstream learns about a call: who, for which tenant, in which run, through which tool. */
export interface AssertionClaims {
  audience: string
  userId: string
  tenantId: string
  executionId: string
  tool: string
}

export const ASSERTION_TTL_SECONDS = 60

/** Signs the tenant assertion sent to platform tools (ES256, `kid` = the key's JWK thumbprint). */
export interface ToolSigner {
  readonly kid: string
  readonly publicJwk: JWK
  sign: (claims: AssertionClaims) => Promise<string>
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
  return {
    kid,
    publicJwk,
    sign: async (claims) => await new SignJWT({ tenantId: claims.tenantId, executionId: claims.executionId, tool: claims.tool })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(claims.audience)
      .setSubject(claims.userId)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${ASSERTION_TTL_SECONDS}s`)
      .sign(privateKey)
  }
}
