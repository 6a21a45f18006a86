// The key schedule is a wire format: fixed keys must give fixed bytes on both sides (Node's crypto
// on the server, Web Crypto in the client), or deployed clients stop working.
import { createECDH, createHmac, createPublicKey } from 'node:crypto'
import t from 'tap'
import { C2S, deriveSessionKeys, frameNonce, handshakeTranscript, jwkThumbprint, openFrame, S2C, sealFrame, serverKeyAgreement, signTranscript, verifyTranscript } from '../../services/sessions/key-schedule.ts'
import { loadIdentityKey } from '../../services/sessions/identity-key.ts'
import * as client from '../../clients/typescript/src/session.ts'
import { IDENTITY_PEM, KAT } from './fixtures.ts'

const b64 = (text: string): Buffer => Buffer.from(text, 'base64url')

t.test('server side: ECDH, HKDF and AES-GCM give the recorded bytes', async (t) => {
  const client = createECDH('prime256v1')
  client.setPrivateKey(b64(KAT.clientPrivate))
  t.equal(client.getPublicKey('base64url', 'uncompressed'), KAT.clientPublic)
  const agreement = serverKeyAgreement(b64(KAT.clientPublic), KAT.sessionId, b64(KAT.serverPrivate))
  t.equal(agreement.serverPublicKey.toString('base64url'), KAT.serverPublic)
  t.equal(agreement.keys.c2s.toString('hex'), KAT.c2sKey)
  t.equal(agreement.keys.s2c.toString('hex'), KAT.s2cKey)

  // HKDF-SHA256 by hand (RFC 5869: one block of expand), so the KDF itself is pinned too.
  const prk = createHmac('sha256', Buffer.from(KAT.sessionId)).update(Buffer.from(KAT.sharedSecret, 'hex')).digest()
  const okm = createHmac('sha256', prk).update(Buffer.concat([Buffer.from('tenant-enclave/v1 c2s'), Buffer.from([1])])).digest()
  t.equal(okm.toString('hex'), KAT.c2sKey)

  t.same(sealFrame(agreement.keys.c2s, C2S, 0, KAT.c2sPlaintext), KAT.c2s0)
  t.same(sealFrame(agreement.keys.c2s, C2S, 7, KAT.c2sPlaintext), KAT.c2s7)
  t.same(sealFrame(agreement.keys.s2c, S2C, 0, KAT.s2cPlaintext), KAT.s2c0)
  t.equal(openFrame(agreement.keys.c2s, C2S, KAT.c2s7).toString(), KAT.c2sPlaintext)
  t.equal(frameNonce(S2C, 258).toString('hex'), '000000010000000000000102', 'direction then big-endian counter')
  t.same(deriveSessionKeys(Buffer.from(KAT.sharedSecret, 'hex'), KAT.sessionId), agreement.keys)
})

t.test('server side: the identity key, its thumbprint and the handshake signature', async (t) => {
  const identity = loadIdentityKey(IDENTITY_PEM)
  t.equal(identity.thumbprint, KAT.thumbprint)
  t.equal(identity.kid, KAT.thumbprint)
  t.match(identity.publicJwk, { ...KAT.identityJwk, use: 'sig', alg: 'ES256' })
  t.equal(jwkThumbprint(KAT.identityJwk), KAT.thumbprint)
  const transcript = handshakeTranscript(KAT.sessionId, b64(KAT.clientPublic), b64(KAT.serverPublic))
  t.ok(verifyTranscript(createPublicKey({ key: KAT.identityJwk, format: 'jwk' }), transcript, b64(KAT.signature)))
})

t.test('client side (Web Crypto) reproduces the same bytes', async (t) => {
  const privateKey = await crypto.subtle.importKey('jwk', {
    kty: 'EC',
    crv: 'P-256',
    d: KAT.clientPrivate,
    x: client.toBase64url(client.fromBase64url(KAT.clientPublic).subarray(1, 33)),
    y: client.toBase64url(client.fromBase64url(KAT.clientPublic).subarray(33))
  }, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits'])
  const keys = await client.deriveSessionKeys(privateKey, client.fromBase64url(KAT.serverPublic), KAT.sessionId)
  t.same(await client.sealFrame(keys.c2s, 0, 0, KAT.c2sPlaintext), KAT.c2s0)
  t.same(await client.sealFrame(keys.c2s, 0, 7, KAT.c2sPlaintext), KAT.c2s7)
  t.equal(await client.openFrame(keys.s2c, 1, KAT.s2c0), KAT.s2cPlaintext)
  t.equal(await client.jwkThumbprint(KAT.identityJwk), KAT.thumbprint)
  const identity = await crypto.subtle.importKey('jwk', KAT.identityJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify'])
  const transcript = handshakeTranscript(KAT.sessionId, b64(KAT.clientPublic), b64(KAT.serverPublic))
  t.ok(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, identity, b64(KAT.signature), transcript))
  // The server's own randomised signatures verify in Web Crypto (both use r ‖ s).
  const fresh = signTranscript(loadIdentityKey(IDENTITY_PEM).privateKey, transcript)
  t.ok(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, identity, fresh, transcript))
})

t.test('frames that do not authenticate are refused', async (t) => {
  const keys = deriveSessionKeys(Buffer.from(KAT.sharedSecret, 'hex'), KAT.sessionId)
  t.throws(() => openFrame(keys.c2s, S2C, KAT.c2s0), { name: 'FrameDecryptionError' }, 'the other direction\'s nonce')
  t.throws(() => openFrame(keys.s2c, C2S, KAT.c2s0), { name: 'FrameDecryptionError' }, 'the other direction\'s key')
  t.throws(() => openFrame(keys.c2s, C2S, { counter: 0, ciphertext: 'AAAA' }), { name: 'FrameDecryptionError' }, 'shorter than a tag')
  t.throws(() => openFrame(keys.c2s, C2S, { counter: 0, ciphertext: KAT.c2s0.ciphertext + '=' }), { name: 'FrameDecryptionError' }, 'not base64url')
  t.throws(() => openFrame(keys.c2s, C2S, { counter: -1, ciphertext: KAT.c2s0.ciphertext }), { name: 'FrameDecryptionError' })
  // A truncated tag is never accepted (Node would take a short tag unless authTagLength is pinned).
  t.throws(() => openFrame(keys.c2s, C2S, { counter: 0, ciphertext: b64(KAT.c2s0.ciphertext).subarray(0, -4).toString('base64url') }), { name: 'FrameDecryptionError' })
  t.throws(() => serverKeyAgreement(Buffer.alloc(65, 4), 'x'), { code: 'INVALID_PUBLIC_KEY', statusCode: 400 }, 'a point off the curve')
  t.throws(() => serverKeyAgreement(Buffer.alloc(33, 2), 'x'), { code: 'INVALID_PUBLIC_KEY', statusCode: 400 }, 'a compressed point')
})
