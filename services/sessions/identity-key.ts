import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto'
import { jwkThumbprint, PROTOCOL } from './key-schedule.ts'

/** The public half as published in /.well-known/jwks.json. */
export interface IdentityJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
  use: 'sig'
  alg: 'ES256'
  kid: string
}

export interface SessionIdentity {
  /** The JWK's kid: its thumbprint (RFC 7638 §1 suggests thumbprints as kids). */
  kid: string
  /** RFC 7638 SHA-256 thumbprint, base64url: what clients pin. */
  thumbprint: string
  publicJwk: IdentityJwk
  privateKey: KeyObject
  publicKey: KeyObject
  /** AES-256 key derived from the private key that seals session keys in the store. */
  storeKey: Buffer
  /** Whether the key was generated for this process (SESSION_IDENTITY_KEY unset). */
  generated: boolean
}

export class IdentityKeyError extends Error {
  override name = 'IdentityKeyError'
}

/**
 * The long-term identity key: SESSION_IDENTITY_KEY (PEM, a P-256 private key, PKCS#8 or SEC1),
 * or a key generated for this process when unset.
 */
export function loadIdentityKey (pem?: string): SessionIdentity {
  let privateKey: KeyObject
  if (pem === undefined) {
    privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  } else {
    try {
      privateKey = createPrivateKey(pem)
    } catch (err) {
      throw new IdentityKeyError(`SESSION_IDENTITY_KEY is not a readable PEM private key: ${(err as Error).message}`)
    }
    if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new IdentityKeyError('SESSION_IDENTITY_KEY must be an EC P-256 (prime256v1) private key')
    }
  }
  const publicKey = createPublicKey(privateKey)
  const { x, y } = publicKey.export({ format: 'jwk' }) as { x: string, y: string }
  const thumbprint = jwkThumbprint({ crv: 'P-256', kty: 'EC', x, y })
  const d = Buffer.from((privateKey.export({ format: 'jwk' }) as { d: string }).d, 'base64url')
  return {
    kid: thumbprint,
    thumbprint,
    publicJwk: { kty: 'EC', crv: 'P-256', x, y, use: 'sig', alg: 'ES256', kid: thumbprint },
    privateKey,
    publicKey,
    storeKey: Buffer.from(hkdfSync('sha256', d, Buffer.alloc(0), `${PROTOCOL} session-store`, 32)),
    generated: pem === undefined
  }
}
