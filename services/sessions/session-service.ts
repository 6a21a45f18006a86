import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto'
import { TtlCache } from '../ttl-cache.ts'
import {
  C2S, FrameDecryptionError, fromBase64url, handshakeTranscript,
  openFrame, S2C, sealFrame, serverKeyAgreement, signTranscript, type Frame, type SessionKeys
} from './key-schedule.ts'
import type { SessionIdentity } from './identity-key.ts'
import type { SessionStore, StoredSession } from './session-store.ts'
import { ServiceError } from '../errors/index.ts'

const sessionNotFound = (): ServiceError => new ServiceError('SESSION_NOT_FOUND')
const sessionExpired = (): ServiceError => new ServiceError('SESSION_EXPIRED')

export interface SessionOwner {
  tenantId: string
  userId: string
}

export interface OpenedSession {
  sessionId: string
  serverPublicKey: string
  signature: string
  kid: string
  expiresAt: string
}

/** A client frame that authenticated and was accepted once; `seal` answers on this session. */
export interface AcceptedFrame {
  plaintext: Buffer
  /**
   * Seals `value` (JSON) as this session's next server frame. Calls are served in call order, so
   * the frames of one answer (a stream) carry strictly increasing counters.
   */
  seal: (value: unknown) => Promise<Frame>
  /**
   * Seals `value` as the answer's last frame with the counter a stream keeps in hand for it
   * (expectedFrames > 1): it works after the session expired, once; nothing is sealed after it.
   */
  sealLast: (value: unknown) => Promise<Frame>
  /** When the session expires (ms since the epoch): a stream still open then ends with a sealed `final`. */
  expiresAt: number
}

export interface AcceptOptions {
  /**
   * Server frames the answer is expected to need (1 for a plain answer, a few for a stream): they
   * are reserved with the frame's acceptance, in the same atomic store call. More are reserved in
   * growing blocks when a stream needs them; counters left unused are skipped, never reused.
   */
  expectedFrames?: number
}

// A stream's further reservations double from the first block's size up to this, so a long
// stream costs a store round trip per 256 frames, not per frame.
const MAX_S2C_BLOCK = 256

interface FrameKeys {
  c2s: KeyObject
  s2c: KeyObject
}

export interface SessionServiceOptions {
  store: SessionStore
  identity: SessionIdentity
  ttlMs: number
  now?: () => number
}

// The id carries its expiry (base36 ms), so an id whose record is gone still tells 410 from 404.
const SESSION_ID = /^([0-9a-z]{1,11})\.[A-Za-z0-9_-]{22}$/

export function isSessionId (text: string): boolean {
  return SESSION_ID.test(text)
}

/**
 * Opens sessions (ephemeral ECDH signed by the identity key) and accepts their frames: the
 * owner, then the tag, then the counter (atomically, in the store), in that order, so a frame
 * that is not authentic never consumes a counter.
 */
export function createSessionService (options: SessionServiceOptions) {
  const { store, identity, ttlMs } = options
  const now = options.now ?? Date.now
  // Keys never change for a session's life: one store read per instance and minute, not per frame.
  // The keys are held as KeyObjects: a cipher made from one skips the key import a raw Buffer
  // costs at every frame (about half of sealing a small frame).
  const cache = new TtlCache<{ session: StoredSession, keys: FrameKeys }>(60_000, { maxEntries: 10_000, now })

  function sealKeys (sessionId: string, keys: SessionKeys): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', identity.storeKey, iv, { authTagLength: 16 })
    cipher.setAAD(Buffer.from(sessionId, 'utf8'))
    const body = Buffer.concat([cipher.update(Buffer.concat([keys.c2s, keys.s2c])), cipher.final(), cipher.getAuthTag()])
    return Buffer.concat([iv, body]).toString('base64url')
  }

  function unsealKeys (sessionId: string, sealed: string): SessionKeys {
    const bytes = Buffer.from(sealed, 'base64url')
    const decipher = createDecipheriv('aes-256-gcm', identity.storeKey, bytes.subarray(0, 12), { authTagLength: 16 })
    decipher.setAAD(Buffer.from(sessionId, 'utf8'))
    decipher.setAuthTag(bytes.subarray(bytes.length - 16))
    const plain = Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()])
    return { c2s: plain.subarray(0, 32), s2c: plain.subarray(32, 64) }
  }

  async function load (sessionId: string): Promise<{ session: StoredSession, keys: FrameKeys }> {
    const match = SESSION_ID.exec(sessionId)
    if (match === null) throw sessionNotFound()
    const expiresAt = parseInt(match[1] as string, 36)
    if (expiresAt <= now()) throw sessionExpired()
    let loaded
    try {
      loaded = await cache.get(sessionId, async () => {
        const session = await store.get(sessionId)
        if (session === null) throw sessionNotFound()
        const keys = unsealKeys(sessionId, session.sealedKeys)
        return { session, keys: { c2s: createSecretKey(keys.c2s), s2c: createSecretKey(keys.s2c) } }
      })
    } catch (err) {
      // Gone from the store between the check above and the read: it has just expired.
      if (err instanceof ServiceError && err.code === 'SESSION_NOT_FOUND' && expiresAt <= now()) throw sessionExpired()
      throw err
    }
    if (loaded.session.expiresAt <= now()) throw sessionExpired()
    return loaded
  }

  return {
    async open (owner: SessionOwner, clientPublicKey: string): Promise<OpenedSession> {
      const clientPoint = fromBase64url(clientPublicKey)
      if (clientPoint === null) throw new ServiceError('INVALID_PUBLIC_KEY', { detail: 'clientPublicKey must be base64url' })
      const expiresAt = now() + ttlMs
      const sessionId = `${expiresAt.toString(36)}.${randomBytes(16).toString('base64url')}`
      const agreement = serverKeyAgreement(clientPoint, sessionId)
      const signature = signTranscript(identity.privateKey, handshakeTranscript(sessionId, clientPoint, agreement.serverPublicKey))
      await store.create(sessionId, { tenantId: owner.tenantId, userId: owner.userId, expiresAt, sealedKeys: sealKeys(sessionId, agreement.keys) })
      return {
        sessionId,
        serverPublicKey: agreement.serverPublicKey.toString('base64url'),
        signature: signature.toString('base64url'),
        kid: identity.kid,
        expiresAt: new Date(expiresAt).toISOString()
      }
    },

    /**
     * 404/410 for an unknown or expired session, 403 for another tenant or user, 400
     * DECRYPTION_FAILED, 409 REPLAYED_FRAME; only an accepted frame consumes its counter.
     */
    async accept (owner: SessionOwner, sessionId: string, frame: Frame, options: AcceptOptions = {}): Promise<AcceptedFrame> {
      const { session, keys } = await load(sessionId)
      if (session.tenantId !== owner.tenantId || session.userId !== owner.userId) throw new ServiceError('FORBIDDEN', { reason: 'this session belongs to another tenant or user' })
      let plaintext: Buffer
      try {
        plaintext = openFrame(keys.c2s, C2S, frame)
      } catch (err) {
        if (err instanceof FrameDecryptionError) throw new ServiceError('DECRYPTION_FAILED')
        throw err
      }
      const expected = Math.max(1, Math.min(MAX_S2C_BLOCK, Math.trunc(options.expectedFrames ?? 1)))
      const acceptance = await store.acceptFrame(sessionId, frame.counter, expected)
      if (acceptance.status === 'replayed') throw new ServiceError('REPLAYED_FRAME')
      if (acceptance.status === 'gone') {
        cache.delete(sessionId)
        throw sessionExpired()
      }
      // [next, end): server counters reserved for this answer alone. Every counter comes from
      // the store's atomic increment, so no other request (on any instance) is given one of them.
      let next = acceptance.s2cCounter
      let end = next + expected
      let block = expected
      let queue: Promise<unknown> = Promise.resolve()
      let pending = 0
      // A stream keeps its last reserved counter in hand for a last frame (sealLast): a stream
      // whose session expires can still end with a sealed `final`. Counters stay increasing:
      // the one in hand is always the highest reserved yet, and skipped when a block follows.
      const spare = expected > 1 ? 1 : 0
      let closed = false
      const sealNext = async (value: unknown): Promise<Frame> => {
        if (closed) throw sessionExpired()
        if (next >= end - spare) {
          block = Math.min(MAX_S2C_BLOCK, block * 2)
          const first = await store.reserveS2c(sessionId, block)
          if (first === null) {
            cache.delete(sessionId)
            throw sessionExpired()
          }
          next = first
          end = first + block
        }
        return sealFrame(keys.s2c, S2C, next++, JSON.stringify(value))
      }
      return {
        plaintext,
        expiresAt: session.expiresAt,
        sealLast: async (value) => {
          pending++
          const sealed = queue.then(async () => {
            if (closed || next >= end) throw sessionExpired()
            closed = true
            return sealFrame(keys.s2c, S2C, next++, JSON.stringify(value))
          }).finally(() => { pending-- })
          queue = sealed.catch(() => {})
          return await sealed
        },
        seal: async (value) => {
          // Nothing ahead and a counter in hand (every plain answer): seal at once, in order.
          if (pending === 0 && !closed && next < end - spare) return sealFrame(keys.s2c, S2C, next++, JSON.stringify(value))
          pending++
          const sealed = queue.then(async () => await sealNext(value)).finally(() => { pending-- })
          queue = sealed.catch(() => {})
          return await sealed
        }
      }
    }
  }
}

export type SessionService = ReturnType<typeof createSessionService>
