import { createECDH, createPublicKey } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Response as LightMyRequestResponse } from 'light-my-request'
import { C2S, deriveSessionKeys, handshakeTranscript, openFrame, S2C, sealFrame, verifyTranscript, type Frame, type SessionKeys } from '../../services/sessions/key-schedule.ts'

// A fixed identity key for the known-answer test and for instances that must share one.
export const IDENTITY_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5VyeGupiU65Pn2pE
XyVfQsnvBxkILQiwjrTXfofkn1WhRANCAARNGR4RX16FBNNB5fSzEbuGe3X8ux6Q
O/Rml0I0wQfvDOF7TT2ln1mHDat5HURTcZfwgOR0d9L6XoVNByJ2Ib8G
-----END PRIVATE KEY-----
`

// Fixed keys → fixed bytes: private scalars are sha256('kat client' | 'kat server' | 'kat identity').
// Changing any of these breaks every client already deployed: bump the protocol instead.
export const KAT = {
  sessionId: 'mhx1abcd.AAAAAAAAAAAAAAAAAAAAAA',
  clientPrivate: 'kDUrezk2vBG5xq_6L-6nocM9WoFIyp9Oj6-iD6rhqXA',
  clientPublic: 'BIG-XGvrWzdlI0Choddn6UpWm-IMuIrS0sxic7eeRhRVtzZb8UCf_DD5ysm0G_7aPHy4_vxzweXtX_fPFanJG-4',
  serverPrivate: 'vZCvdNh5pERomNWGQZ5FJQItmR5SnNgdvbPArzOT1og',
  serverPublic: 'BLL5uem50pRtW3TwaV1O1ov2lCWSiNf6anbI07vNIUIPLEEBeOawhCVsF1JzErvOFv7y0ca3DKesIubkqiwR2rg',
  sharedSecret: 'fd417991e9f79877abe47f0c8141f2c24cd149bbfe6c74107612a2ce874d801a',
  c2sKey: '825c69ed8a0a6a11dbd1486dfa3816e8f218a287bc625f241af3ca0f6e6736db',
  s2cKey: '0be6b5a17d990d90e559bf1c9633b9c670808f0a7538fc35a9ee9c775e6c6651',
  c2sPlaintext: '{"code":"return 1 + 1"}',
  c2s0: { counter: 0, ciphertext: 'St5J76bcEzMGNKRP--Qpcy20xcEIGIFolUPD9AhD2bNu-k0AwWgm' },
  c2s7: { counter: 7, ciphertext: 'xjXI2TRneqriqhadwdVV4JDxWNmqSo3On_twMhg4PExBDZ4AvLmE' },
  s2cPlaintext: '{"value":2}',
  s2c0: { counter: 0, ciphertext: 'ToBCNBUteAlTtDCb1ah80XKXCHLTXm-sSj6R' },
  identityJwk: { kty: 'EC', crv: 'P-256', x: 'TRkeEV9ehQTTQeX0sxG7hnt1_LsekDv0ZpdCNMEH7ww', y: '4XtNPaWfWYcNq3kdRFNxl_CA5HR30vpehU0HInYhvwY' },
  thumbprint: 'sfWbbMQl9M8eHIL1Sf3dTdQzTtxbYDHziiBdxS35-_k',
  // ES256 is randomised: this is one valid signature over the KAT transcript, not the only one.
  signature: 'FhURsnNVtpjTsFohHcS2BgvM74Lhhf3QPizxHBk8JHYzvtw-UaqYPCP_9vj6q59uLyZjyrAQtYXCGXLqhN1_3w'
} as const

export interface RawSession {
  sessionId: string
  keys: SessionKeys
  /** A client frame of `body` (JSON) with `counter`. */
  frame: (counter: number, body: unknown) => Frame
  /** The decrypted JSON of a server frame. */
  open: (frame: Frame) => any
  execute: (frame: Frame, headers?: Record<string, string>) => Promise<LightMyRequestResponse>
}

/**
 * The handshake done by hand with Node's crypto (the client library is tested over real HTTP):
 * lets a test build any frame, tampered or replayed, and send it through `app.inject`.
 */
export async function rawSession (app: FastifyInstance, headers: Record<string, string>): Promise<RawSession> {
  const ecdh = createECDH('prime256v1')
  ecdh.generateKeys()
  const clientPublic = ecdh.getPublicKey(null, 'uncompressed')
  const res = await app.inject({ method: 'POST', url: '/api/sessions', headers, payload: { clientPublicKey: clientPublic.toString('base64url') } })
  if (res.statusCode !== 201) throw new Error(`session not opened: ${res.statusCode} ${res.body}`)
  const { sessionId, serverPublicKey, signature } = res.json()
  const serverPublic = Buffer.from(serverPublicKey, 'base64url')
  const identity = createPublicKey({ key: (await app.inject('/.well-known/enclave-session.json')).json().jwk, format: 'jwk' })
  if (!verifyTranscript(identity, handshakeTranscript(sessionId, clientPublic, serverPublic), Buffer.from(signature, 'base64url'))) throw new Error('bad signature')
  const keys = deriveSessionKeys(ecdh.computeSecret(serverPublic), sessionId)
  return {
    sessionId,
    keys,
    frame: (counter, body) => sealFrame(keys.c2s, C2S, counter, JSON.stringify(body)),
    open: (frame) => JSON.parse(openFrame(keys.s2c, S2C, frame).toString('utf8')),
    execute: async (frame, other = headers) => await app.inject({ method: 'POST', url: `/api/sessions/${sessionId}/execute`, headers: other, payload: { frame } })
  }
}

/**
 * The two-instance tests' setup: two apps with the same identity key (on the Redis and PostgreSQL
 * they share), a tenant, and a raw session opened on the first.
 */
export async function sessionOnTwoInstances (t: { teardown: (fn: () => unknown) => void }, label: string, tier?: 'enterprise') {
  // Imported here: the other fixtures' users need no app.
  const { buildApp, createTenant } = await import('../helper.ts')
  const env = { SESSION_IDENTITY_KEY: IDENTITY_PEM, RATE_LIMIT_PER_MINUTE: '100000' }
  const [a, b] = await Promise.all([buildApp(t, env), buildApp(t, env)])
  const tenant = await createTenant(a, label, tier === undefined ? {} : { tier })
  return { a, b, tenant, session: await rawSession(a, tenant.headers) }
}
