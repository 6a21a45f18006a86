// Encrypted sessions, client side (docs/api.md "Encrypted sessions"): Web Crypto and fetch only, no
// runtime imports (types only), so it runs unchanged in browsers and in Node 20 or later.
//
//   const session = await openSession({ baseUrl, token, pinnedThumbprint })
//   const result = await session.execute('return 1 + 1')   // an ExecutionResult
//   for await (const event of session.stream('console.log(1); return 2')) console.log(event)
//
// Nothing is sent before the server's identity key matches the pinned thumbprint, and no code
// before the handshake's signature by that key checks out: a relay that answers with its own keys
// is refused. The service itself decrypts to run the code.

// The shapes come from the code generated from the service's OpenAPI document (types only, erased).
import type { ExecutionEvent, ExecutionResult } from './generated/types.gen.ts'
export type { ExecutionEvent, ExecutionResult }

export const PROTOCOL = 'tenant-enclave/v1'
const C2S = 0
const S2C = 1

export interface Frame {
  counter: number
  ciphertext: string
}

/** One event of a run, told apart by `type` (the package's `events()` yields the same). */
export type StreamEvent = ExecutionEvent

const EVENT_TYPES = new Set(['queued', 'started', 'log', 'tool_call', 'tool_result', 'heartbeat', 'final'])

export interface OpenSessionOptions {
  /** The service's origin, e.g. https://enclave.example.com (a path prefix is kept). */
  baseUrl: string
  /** The caller's bearer token (JWT). */
  token: string
  /** RFC 7638 SHA-256 thumbprint (base64url) of the service's identity key, printed at its start. */
  pinnedThumbprint: string
  /** Another fetch (tests, proxies); default globalThis.fetch. */
  fetch?: typeof fetch
}

export interface ExecuteOptions {
  timeoutMs?: number
  language?: 'javascript' | 'typescript'
}

export interface StreamOptions extends ExecuteOptions {
  /** Yield heartbeats (the last seq again, every 5 s of silence) too; skipped by default, as `events()` does. */
  heartbeats?: boolean
  /** Aborting it leaves the stream, as breaking out of the loop does: the run is cancelled. */
  signal?: AbortSignal
}

/**
 * Why a session call failed. `code`: PIN_MISMATCH, BAD_SIGNATURE, BAD_RESPONSE, SESSION_CLOSED,
 * or the service's own code (DECRYPTION_FAILED, REPLAYED_FRAME, SESSION_EXPIRED, and for refusals
 * that came back encrypted CODE_TOO_LARGE, EXECUTION_QUOTA_EXCEEDED, ...). `body` is the refusal's
 * decrypted body, when there is one.
 */
export class EnclaveSessionError extends Error {
  readonly code: string
  readonly status: number | undefined
  readonly body: Record<string, unknown> | undefined

  constructor (code: string, message: string, status?: number, body?: Record<string, unknown>) {
    super(message)
    this.name = 'EnclaveSessionError'
    this.code = code
    this.status = status
    this.body = body
  }
}

export interface EnclaveSession {
  readonly sessionId: string
  readonly expiresAt: Date
  /** Runs `code` in the enclave; the code and the result travel encrypted. One call at a time. */
  execute: (code: string, options?: ExecuteOptions) => Promise<ExecutionResult>
  /**
   * Runs `code` and yields its events as they happen (`started`, `log`, `tool_call`,
   * `tool_result`, ..., `final` {result} last), each decrypted from its own frame. The request is
   * sent on the first `next()`, and holds the session until the stream ends: a call made while
   * a stream is open waits for it. Leaving before `final` (break, `signal`) cancels the run and
   * closes the session, as does any frame that does not decrypt, a counter that does not
   * increase, an event missing from the sequence, or a stream cut short.
   */
  stream: (code: string, options?: StreamOptions) => AsyncGenerator<StreamEvent, void, undefined>
}

// Web Crypto's key type, named so that both DOM and Node typings accept it.
type Key = Awaited<ReturnType<typeof crypto.subtle.importKey>>

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function toBase64url (bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export function fromBase64url (text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new EnclaveSessionError('BAD_RESPONSE', 'not base64url')
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

function concat (...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** RFC 7638 SHA-256 thumbprint of an EC public JWK. */
export async function jwkThumbprint (jwk: { crv: string, kty: string, x: string, y: string }): Promise<string> {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
  return toBase64url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(canonical))))
}

/** 4-byte big-endian direction, then the 8-byte big-endian counter. */
export function frameNonce (direction: number, counter: number): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError('counter must be a safe integer >= 0')
  const nonce = new Uint8Array(12)
  const view = new DataView(nonce.buffer)
  view.setUint32(0, direction)
  view.setBigUint64(4, BigInt(counter))
  return nonce
}

export interface SessionKeys {
  c2s: Key
  s2c: Key
}

/** HKDF-SHA256 over the ECDH secret, salt = sessionId, one info per direction → AES-256-GCM keys. */
export async function deriveSessionKeys (privateKey: Key, serverPoint: Uint8Array<ArrayBuffer>, sessionId: string): Promise<SessionKeys> {
  const serverKey = await crypto.subtle.importKey('raw', serverPoint, { name: 'ECDH', namedCurve: 'P-256' }, false, [])
  const secret = await crypto.subtle.deriveBits({ name: 'ECDH', public: serverKey }, privateKey, 256)
  const ikm = await crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveKey'])
  const derive = async (info: string, usage: 'encrypt' | 'decrypt'): Promise<Key> => await crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: encoder.encode(sessionId), info: encoder.encode(`${PROTOCOL} ${info}`) },
    ikm, { name: 'AES-GCM', length: 256 }, false, [usage])
  return { c2s: await derive('c2s', 'encrypt'), s2c: await derive('s2c', 'decrypt') }
}

export async function sealFrame (key: Key, direction: number, counter: number, plaintext: string): Promise<Frame> {
  const body = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: frameNonce(direction, counter) }, key, encoder.encode(plaintext))
  return { counter, ciphertext: toBase64url(new Uint8Array(body)) }
}

export async function openFrame (key: Key, direction: number, frame: Frame): Promise<string> {
  try {
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: frameNonce(direction, frame.counter) }, key, fromBase64url(frame.ciphertext))
    return decoder.decode(plain)
  } catch {
    throw new EnclaveSessionError('BAD_RESPONSE', 'The answer\'s frame does not decrypt: it was altered or not made by the session\'s server')
  }
}

function isFrame (value: unknown): value is Frame {
  const frame = value as Frame
  return typeof value === 'object' && value !== null && Number.isSafeInteger(frame.counter) && frame.counter >= 0 && typeof frame.ciphertext === 'string'
}

function parseEvent (plaintext: string): StreamEvent {
  let event: any
  try {
    event = JSON.parse(plaintext)
  } catch {
    throw new EnclaveSessionError('BAD_RESPONSE', 'A frame of the stream holds no event')
  }
  if (typeof event !== 'object' || event === null || !Number.isSafeInteger(event.seq) || !EVENT_TYPES.has(event.type) ||
    typeof event.at !== 'string' || typeof event.data !== 'object' || event.data === null) {
    throw new EnclaveSessionError('BAD_RESPONSE', 'A frame of the stream holds no event')
  }
  return event as StreamEvent
}

function frameOfLine (line: string): Frame {
  let frame: unknown
  try {
    frame = JSON.parse(line)?.frame
  } catch {
    throw new EnclaveSessionError('BAD_RESPONSE', 'A line of the stream is not JSON')
  }
  if (!isFrame(frame)) throw new EnclaveSessionError('BAD_RESPONSE', 'A line of the stream holds no frame')
  return frame
}

/**
 * The complete lines of an NDJSON body, as they arrive: every line a read completed, together.
 * Read with getReader (browsers without async-iterable streams too).
 */
async function * ndjsonChunks (body: ReadableStream<Uint8Array>): AsyncGenerator<string[], void, undefined> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      const end = buffer.lastIndexOf('\n')
      if (end < 0) continue
      const lines = buffer.slice(0, end).split('\n').filter((line) => line.trim() !== '')
      buffer = buffer.slice(end + 1)
      if (lines.length > 0) yield lines
    }
    buffer += decoder.decode()
    if (buffer.trim() !== '') yield [buffer]
  } finally {
    reader.cancel().catch(() => {})
  }
}

async function readJson (response: Response): Promise<any> {
  try {
    return await response.json()
  } catch {
    throw new EnclaveSessionError('BAD_RESPONSE', `The service answered ${response.status} without a JSON body`, response.status)
  }
}

async function clearError (response: Response): Promise<EnclaveSessionError> {
  const body = await readJson(response).catch(() => ({}))
  const code = typeof body?.code === 'string' ? body.code : 'HTTP_ERROR'
  return new EnclaveSessionError(code, typeof body?.error === 'string' ? body.error : `The service answered ${response.status}`, response.status)
}

/**
 * Opens a session. Before anything is sent: the identity key must match `pinnedThumbprint`.
 * Before the session is usable: the handshake's signature by that key must cover this client's
 * ephemeral key and the server's.
 */
export async function openSession (options: OpenSessionOptions): Promise<EnclaveSession> {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  const base = options.baseUrl.replace(/\/+$/, '')
  const auth = { authorization: `Bearer ${options.token}` }

  const info = await doFetch(`${base}/.well-known/enclave-session.json`)
  if (!info.ok) throw await clearError(info)
  const { jwk } = await readJson(info)
  if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new EnclaveSessionError('BAD_RESPONSE', 'The service published no P-256 identity key')
  }
  if (await jwkThumbprint(jwk) !== options.pinnedThumbprint) {
    throw new EnclaveSessionError('PIN_MISMATCH', 'The service\'s identity key does not match the pinned thumbprint')
  }
  const identity = await crypto.subtle.importKey('jwk', { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify'])

  const ephemeral = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']) as { publicKey: Key, privateKey: Key }
  const clientPoint = new Uint8Array(await crypto.subtle.exportKey('raw', ephemeral.publicKey))
  const opened = await doFetch(`${base}/api/sessions`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ clientPublicKey: toBase64url(clientPoint) })
  })
  if (opened.status !== 201) throw await clearError(opened)
  const { sessionId, serverPublicKey, signature, expiresAt } = await readJson(opened)
  if (typeof sessionId !== 'string' || typeof serverPublicKey !== 'string' || typeof signature !== 'string' || typeof expiresAt !== 'string') {
    throw new EnclaveSessionError('BAD_RESPONSE', 'The session answer lacks sessionId, serverPublicKey, signature or expiresAt')
  }
  const serverPoint = fromBase64url(serverPublicKey)
  const transcript = concat(encoder.encode(sessionId), clientPoint, serverPoint)
  const verified = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, identity, fromBase64url(signature), transcript)
  if (!verified) {
    throw new EnclaveSessionError('BAD_SIGNATURE', 'The session\'s keys are not signed by the pinned identity key: something between here and the service answered instead')
  }
  const keys = await deriveSessionKeys(ephemeral.privateKey, serverPoint, sessionId)

  let nextCounter = 0
  let lastServerCounter = -1
  let closed: string | undefined
  let tail: Promise<void> = Promise.resolve()
  const url = `${base}/api/sessions/${encodeURIComponent(sessionId)}/execute`

  // One request at a time, so server frames come back in counter order.
  async function exclusive (): Promise<() => void> {
    const previous = tail
    let release!: () => void
    tail = new Promise<void>((resolve) => { release = resolve })
    await previous
    return release
  }

  function checkOpen (): void {
    if (closed !== undefined) throw new EnclaveSessionError('SESSION_CLOSED', `This session is closed (${closed}); open a new one`)
  }

  async function send (code: string, execOptions: ExecuteOptions, extra: { accept?: string, signal?: AbortSignal } = {}): Promise<Response> {
    const { timeoutMs, language } = execOptions
    const body = JSON.stringify({ code, ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(language !== undefined ? { language } : {}) })
    const frame = await sealFrame(keys.c2s, C2S, nextCounter++, body)
    const headers: Record<string, string> = { ...auth, 'content-type': 'application/json' }
    if (extra.accept !== undefined) headers.accept = extra.accept
    return await doFetch(url, { method: 'POST', headers, body: JSON.stringify({ frame }), ...(extra.signal !== undefined ? { signal: extra.signal } : {}) })
  }

  /** A server frame's plaintext, once its counter is above every one before and it decrypts. */
  async function openServerFrame (frame: unknown): Promise<string> {
    if (!isFrame(frame)) throw new EnclaveSessionError('BAD_RESPONSE', 'The answer holds no frame')
    if (frame.counter <= lastServerCounter) throw new EnclaveSessionError('REPLAYED_FRAME', 'The answer\'s counter is not above the last one: a replayed answer')
    const plaintext = await openFrame(keys.s2c, S2C, frame)
    lastServerCounter = frame.counter
    return plaintext
  }

  function claimServerCounter (frame: Frame): void {
    if (frame.counter <= lastServerCounter) throw new EnclaveSessionError('REPLAYED_FRAME', 'A frame\'s counter is not above the last one: a replayed or reordered frame')
    lastServerCounter = frame.counter
  }

  /** A JSON answer's sealed value; an answer in the clear is thrown as the error it names. */
  async function sealedAnswer (response: Response): Promise<unknown> {
    const body = await readJson(response)
    if (!isFrame(body?.frame)) throw new EnclaveSessionError(typeof body?.code === 'string' ? body.code : 'HTTP_ERROR', typeof body?.error === 'string' ? body.error : `The service answered ${response.status}`, response.status)
    return JSON.parse(await openServerFrame(body.frame))
  }

  function refusal (value: any, status: number): EnclaveSessionError {
    return new EnclaveSessionError(typeof value.code === 'string' ? value.code : 'REFUSED', value.error, status, value)
  }

  // A request whose answer did not decrypt may have run, and its answer may yet be replayed as
  // another's: after any such failure the session is closed (open a new one).
  async function exchange (code: string, execOptions: ExecuteOptions): Promise<ExecutionResult> {
    checkOpen()
    let settled = false
    try {
      const response = await send(code, execOptions)
      const value = await sealedAnswer(response) as any
      settled = true
      // A refusal (code too large, quotas, bad body) has the same fields as in the clear.
      if (typeof value?.error === 'string') throw refusal(value, response.status)
      return value as ExecutionResult
    } catch (err) {
      if (!settled) closed = err instanceof EnclaveSessionError ? err.code : 'request failed'
      throw err
    }
  }

  // The same rule for a stream: unless it ends with an authentic `final`, frames of it may be
  // unread (withheld by a relay, or left behind by the caller) and could later be passed off as
  // another request's answer, so the session is closed.
  async function * streamExchange (code: string, options: StreamOptions): AsyncGenerator<StreamEvent, void, undefined> {
    checkOpen()
    const { heartbeats = false, signal, ...execOptions } = options
    signal?.throwIfAborted()
    const leave = new AbortController()
    const onAbort = (): void => { leave.abort(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
    let settled = false
    try {
      const response = await send(code, execOptions, { accept: 'application/x-ndjson', signal: leave.signal })
      if (!/^application\/x-ndjson/i.test(response.headers.get('content-type') ?? '') || response.body === null) {
        // Refused before the run: the same sealed (or clear) answer as execute() gets.
        const value = await sealedAnswer(response) as any
        settled = true
        if (typeof value?.error === 'string') throw refusal(value, response.status)
        throw new EnclaveSessionError('BAD_RESPONSE', 'The service answered with a result instead of a stream', response.status)
      }
      let lastSeq = 0
      for await (const lines of ndjsonChunks(response.body)) {
        // The frames that arrived together are decrypted together (Web Crypto runs them side by
        // side), then taken strictly in order: an event is yielded only once it and every one
        // before it authenticated. Counters are claimed in arrival order before decryption; a
        // frame that then fails closes the session, so a claimed counter is never trusted.
        const opened: Array<Promise<string>> = []
        let refused: unknown
        for (const line of lines) {
          try {
            const frame = frameOfLine(line)
            claimServerCounter(frame)
            const plaintext = openFrame(keys.s2c, S2C, frame)
            plaintext.catch(() => {})
            opened.push(plaintext)
          } catch (err) {
            refused = err
            break
          }
        }
        for (const plaintext of opened) {
          const event = parseEvent(await plaintext)
          if (event.type === 'heartbeat') {
            if (event.seq !== lastSeq) throw new EnclaveSessionError('BAD_RESPONSE', 'A heartbeat out of sequence')
            if (heartbeats) yield event
            continue
          }
          // Events are numbered without gaps: one missing (dropped by a relay) is refused.
          if (event.seq !== lastSeq + 1) throw new EnclaveSessionError('BAD_RESPONSE', `Event ${lastSeq + 1} is missing from the stream`)
          lastSeq = event.seq
          if (event.type === 'final') {
            settled = true
            yield event
            return
          }
          yield event
        }
        if (refused !== undefined) throw refused
      }
      throw new EnclaveSessionError('STREAM_ENDED', 'The stream ended before its final event')
    } catch (err) {
      if (!settled) closed = err instanceof EnclaveSessionError ? err.code : signal?.aborted === true ? 'stream left' : 'request failed'
      throw err
    } finally {
      signal?.removeEventListener('abort', onAbort)
      // Leaving early drops the connection, which cancels the run. After `final` the body is at
      // its end (the reader is cancelled, the connection kept for the next request).
      if (!settled) {
        closed ??= 'stream left before its final event'
        leave.abort()
      }
    }
  }

  return {
    sessionId,
    expiresAt: new Date(expiresAt),
    async execute (code, execOptions = {}) {
      const release = await exclusive()
      try {
        return await exchange(code, execOptions)
      } finally {
        release()
      }
    },
    async * stream (code, streamOptions = {}) {
      const release = await exclusive()
      try {
        yield * streamExchange(code, streamOptions)
      } finally {
        release()
      }
    }
  }
}
