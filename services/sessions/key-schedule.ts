import { createCipheriv, createDecipheriv, createECDH, createHash, hkdfSync, sign, verify, type KeyObject } from 'node:crypto'
import { ServiceError } from '../errors/index.ts'

// docs/api.md "Encrypted sessions", server side, on Node's crypto: ECDH P-256, HKDF-SHA256,
// AES-256-GCM, ES256. The client (clients/typescript/src/session.ts) does the same on Web Crypto;
// test/sessions/known-answer.test.ts holds both to the same fixed vectors.

export const PROTOCOL = 'tenant-enclave/v1'
export const C2S = 0
export const S2C = 1
export type Direction = typeof C2S | typeof S2C

/** An uncompressed P-256 point: 0x04 ‖ x ‖ y. */
export const POINT_BYTES = 65
const TAG_BYTES = 16
const MAX_COUNTER = Number.MAX_SAFE_INTEGER

export interface SessionKeys {
  c2s: Buffer
  s2c: Buffer
}

export interface Frame {
  counter: number
  ciphertext: string
}

export class FrameDecryptionError extends Error {
  override name = 'FrameDecryptionError'
}

/** Base64url without padding, strictly: anything else (padding, '+', '/') is not ours. */
export function fromBase64url (text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null
  return Buffer.from(text, 'base64url')
}

/** Two AES-256-GCM keys from the ECDH secret: salt = the session id, one info per direction. */
export function deriveSessionKeys (sharedSecret: Buffer, sessionId: string): SessionKeys {
  const salt = Buffer.from(sessionId, 'utf8')
  return {
    c2s: Buffer.from(hkdfSync('sha256', sharedSecret, salt, `${PROTOCOL} c2s`, 32)),
    s2c: Buffer.from(hkdfSync('sha256', sharedSecret, salt, `${PROTOCOL} s2c`, 32))
  }
}

/** 12 bytes: the direction as a 4-byte big-endian integer, then the 8-byte big-endian counter. */
export function frameNonce (direction: Direction, counter: number): Buffer {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError('counter must be a safe integer >= 0')
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32BE(direction, 0)
  nonce.writeBigUInt64BE(BigInt(counter), 4)
  return nonce
}

/**
 * A frame key: the 32 raw bytes, or (cheaper per frame: no key import at every cipher) the
 * same bytes as a KeyObject made once.
 */
export type FrameKey = Buffer | KeyObject

/** ciphertext ‖ 16-byte tag, as Web Crypto's AES-GCM produces it. No additional data. */
export function sealFrame (key: FrameKey, direction: Direction, counter: number, plaintext: string | Buffer): Frame {
  const cipher = createCipheriv('aes-256-gcm', key, frameNonce(direction, counter), { authTagLength: TAG_BYTES })
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  return { counter, ciphertext: body.toString('base64url') }
}

/** The plaintext, or FrameDecryptionError for anything that does not authenticate. */
export function openFrame (key: FrameKey, direction: Direction, frame: Frame): Buffer {
  const body = fromBase64url(frame.ciphertext)
  if (body === null || body.length < TAG_BYTES || !Number.isSafeInteger(frame.counter) || frame.counter < 0 || frame.counter > MAX_COUNTER) {
    throw new FrameDecryptionError('malformed frame')
  }
  // authTagLength pins the tag to 16 bytes: a truncated tag must never be accepted.
  const decipher = createDecipheriv('aes-256-gcm', key, frameNonce(direction, frame.counter), { authTagLength: TAG_BYTES })
  decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
  try {
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()])
  } catch {
    throw new FrameDecryptionError('frame does not authenticate')
  }
}

/** What the identity key signs: sessionId (UTF-8) ‖ client point ‖ server point. */
export function handshakeTranscript (sessionId: string, clientPublicKey: Buffer, serverPublicKey: Buffer): Buffer {
  return Buffer.concat([Buffer.from(sessionId, 'utf8'), clientPublicKey, serverPublicKey])
}

/** ES256 as in JWS: the 64-byte r ‖ s. */
export function signTranscript (identityKey: KeyObject, transcript: Buffer): Buffer {
  return sign('sha256', transcript, { key: identityKey, dsaEncoding: 'ieee-p1363' })
}

export function verifyTranscript (identityPublicKey: KeyObject, transcript: Buffer, signature: Buffer): boolean {
  return verify('sha256', transcript, { key: identityPublicKey, dsaEncoding: 'ieee-p1363' }, signature)
}

/**
 * The server's half of the handshake: a fresh ephemeral key, the ECDH secret with the client's
 * point (Node refuses a point that is not on the curve), and the two keys. A bad point is the
 * client's INVALID_PUBLIC_KEY (400).
 */
export function serverKeyAgreement (clientPublicKey: Buffer, sessionId: string, ephemeralPrivateKey?: Buffer): { serverPublicKey: Buffer, keys: SessionKeys } {
  if (clientPublicKey.length !== POINT_BYTES || clientPublicKey[0] !== 0x04) throw new ServiceError('INVALID_PUBLIC_KEY', { detail: 'clientPublicKey must be an uncompressed P-256 point (65 bytes, 0x04 first)' })
  const ecdh = createECDH('prime256v1')
  if (ephemeralPrivateKey === undefined) ecdh.generateKeys()
  else ecdh.setPrivateKey(ephemeralPrivateKey)
  let secret: Buffer
  try {
    secret = ecdh.computeSecret(clientPublicKey)
  } catch {
    throw new ServiceError('INVALID_PUBLIC_KEY', { detail: 'clientPublicKey is not a point on P-256' })
  }
  return { serverPublicKey: ecdh.getPublicKey(null, 'uncompressed'), keys: deriveSessionKeys(secret, sessionId) }
}

/** RFC 7638 SHA-256 thumbprint of an EC public JWK: the required members in lexicographic order. */
export function jwkThumbprint (jwk: { crv?: string, kty?: string, x?: string, y?: string }): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
  return createHash('sha256').update(canonical).digest('base64url')
}
