import { createHmac, createSign } from 'node:crypto'

export interface TokenClaims {
  tenantId: string
  userId: string
  permissions: string[]
}

const base64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url')

/**
 * Mints a JWT for development, tests and the embedded demo. The platform gateway mints real
 * ones; the service itself only verifies. `ttlSeconds: null` mints one without `exp`, which the
 * service refuses unless JWT_REQUIRE_EXP=false.
 */
export function signToken (
  claims: TokenClaims & Record<string, unknown>,
  key: { secret: string } | { privateKey: string, algorithm: 'RS256' | 'ES256' },
  ttlSeconds: number | null = 3600
): string {
  const algorithm = 'secret' in key ? 'HS256' : key.algorithm
  const now = Math.floor(Date.now() / 1000)
  const header = base64url(JSON.stringify({ alg: algorithm, typ: 'JWT' }))
  const payload = base64url(JSON.stringify({ iat: now, ...(ttlSeconds !== null ? { exp: now + ttlSeconds } : {}), ...claims }))
  const signingInput = `${header}.${payload}`
  let signature: Buffer
  if ('secret' in key) {
    signature = createHmac('sha256', key.secret).update(signingInput).digest()
  } else {
    signature = createSign('SHA256').update(signingInput).sign(
      algorithm === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey)
  }
  return `${signingInput}.${base64url(signature)}`
}
