import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl, RETRY_AFTER } from '../../schemas/responses.ts'
import { Compile } from 'typebox/compile'
import { ErrorBody, formatMessage, ServiceError } from '../../services/errors/index.ts'
import { enclaveError } from '../../services/enclave/index.ts'
import { executeScript } from '../../services/executions/execute-script.ts'
import { ExecutionRequestBodySchema, newExecutionId, refusalAnswer } from '../../services/executions/execution-request.ts'
import { CONTENT_TYPES, eventFormat } from '../../services/executions/event-writer.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'
import { SealedEventStream } from '../../services/sessions/sealed-event-stream.ts'

const Base64url = (description: string, extra: Record<string, unknown> = {}) => Type.String({ pattern: '^[A-Za-z0-9_-]*$', description, ...extra })

const FrameSchema = Type.Object({
  counter: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Strictly increasing per direction, from 0; bytes 4-11 of the nonce' }),
  ciphertext: Base64url('AES-256-GCM ciphertext then its 16-byte tag')
}, { additionalProperties: false })
const Encrypted = Type.Object({ frame: FrameSchema }, { $id: 'EncryptedFrame', description: 'One sealed frame of an encrypted session', additionalProperties: false })

const OpenBody = Type.Object({
  clientPublicKey: Base64url('The client\'s ephemeral P-256 key: an uncompressed point (65 bytes)', { maxLength: 128 })
}, { $id: 'SessionOpenRequest', additionalProperties: false })
const Opened = Type.Object({
  sessionId: Type.String(),
  serverPublicKey: Base64url('The server\'s ephemeral P-256 key: an uncompressed point'),
  signature: Base64url('ES256 (r ‖ s, 64 bytes) by the identity key over sessionId (UTF-8) ‖ clientPublicKey ‖ serverPublicKey'),
  kid: Type.String({ description: 'The identity key that signed, as in /.well-known/jwks.json' }),
  expiresAt: Type.String({ format: 'date-time' })
}, { $id: 'SessionOpened' })
const SessionParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-z]{1,11}\\.[A-Za-z0-9_-]{22}$' }) })

// The plaintext of a client frame: an /api/execute body, checked by the same schema.
const isExecutionRequest = Compile(ExecutionRequestBodySchema)

// Server counters reserved with a streamed frame's acceptance: enough for `started`, a few logs
// and `final` in the one atomic store call; a longer stream reserves more in growing blocks.
const STREAM_FIRST_RESERVATION = 8

function parseJson (bytes: Buffer): { ok: true, value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(bytes.toString('utf8')) }
  } catch {
    return { ok: false }
  }
}

const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/sessions', {
    schema: operation('sessions', 'openSession', 'Open an encrypted session', 'Ephemeral ECDH (P-256): the answer holds the server\'s key, signed by the identity key of /.well-known/enclave-session.json.', {
      body: OpenBody,
      response: { 201: json('The session is open', Opened, rl), ...errors([400, 401, 429, 503]) }
    })
  }, async (request, reply) => {
    const opened = await fastify.sessions.open(request.tenant, request.body.clientPublicKey)
    return await reply.code(201).send(opened)
  })

  fastify.post('/sessions/:id/execute', {
    schema: operation('sessions', 'runSessionScript', 'Run a script sent as an encrypted frame', 'The frame\'s plaintext is a runScript body; the result (or a refusal) comes back sealed as one frame. With `Accept: text/event-stream` or `application/x-ndjson` the answer streams the events streaming POST /api/execute sends, each sealed as one `{frame}` (SSE event or NDJSON line), the last being `final`; a refusal before the run is the same answer as without streaming.', {
      params: SessionParams,
      body: Encrypted,
      // Encrypted answers keep the status they would have in the clear (200, 400 bad body, 413,
      // 429); the session's own refusals (400 DECRYPTION_FAILED, 403, 404, 409, 410) are clear.
      response: {
        200: {
          description: 'The sealed ExecutionResult (JSON), or the sealed events as they happen: each SSE event or NDJSON line is one EncryptedFrame',
          content: { 'application/json': { schema: Encrypted }, 'text/event-stream': { schema: Encrypted }, 'application/x-ndjson': { schema: Encrypted } },
          headers: rl
        },
        400: json('A sealed ErrorBody (the plaintext is no runScript body), or a clear one: the frame does not decrypt (DECRYPTION_FAILED) or does not match its schema', Type.Union([Encrypted, ErrorBody])),
        ...errors([401]),
        403: json('The session belongs to another user (FORBIDDEN)', ErrorBody),
        404: json('No such session (SESSION_NOT_FOUND)', ErrorBody),
        409: json('The frame\'s counter is not the next one: a replay or a frame lost', ErrorBody),
        410: json('The session has expired', ErrorBody),
        413: json('A sealed Refusal (the script is over maxCodeSizeKB), or a clear ErrorBody (the body is over BODY_LIMIT_BYTES)', Type.Union([Encrypted, ErrorBody])),
        429: json('A sealed Refusal (a quota or limit), or a clear ErrorBody (the per-minute rate limit): retry after Retry-After seconds', Type.Union([Encrypted, ErrorBody]), { ...RETRY_AFTER, ...rl }),
        ...errors([503])
      }
    })
  }, async (request, reply) => {
    const format = eventFormat(request.headers.accept)
    const accepted = await fastify.sessions.accept(request.tenant, request.params.id, request.body.frame, { expectedFrames: format === undefined ? 1 : STREAM_FIRST_RESERVATION })
    const answer = async (status: 200 | 400 | 413 | 429, value: unknown) => await reply.code(status).send({ frame: await accepted.seal(value) })

    const parsed = parseJson(accepted.plaintext)
    if (!parsed.ok || !isExecutionRequest.Check(parsed.value)) {
      return await answer(400, { error: 'Bad Request', code: 'BAD_REQUEST', message: 'The frame\'s plaintext must be an /api/execute body: {code, timeoutMs?}' })
    }
    const body = parsed.value
    const executionId = newExecutionId()
    const log = request.log.child({ tenantId: request.tenant.tenantId, executionId, sessionId: request.params.id })

    // Streaming, as streaming POST /api/execute does it: the stream opens once the run is admitted
    // (a refusal is the same sealed JSON answer as without streaming), every event is numbered
    // as in the clear and sealed as one frame, and a client that leaves cancels the run.
    let stream: SealedEventStream | undefined
    let seq = 0
    const left = new AbortController()
    let expiry: NodeJS.Timeout | undefined
    const send = (type: StreamEvent['type'], data: Record<string, unknown>): void => {
      if (stream === undefined) {
        stream = new SealedEventStream(format!, accepted.seal, (err) => {
          // No further frame can be sealed: nobody can read the run any more, so it stops.
          log.warn({ err }, 'encrypted stream ended: no further server frame can be sealed; the run is cancelled')
          left.abort()
        }, {
          // The session's expiry ends the stream with a sealed `final` (SESSION_ENDED), at once.
          sealLast: async (event) => await accepted.sealLast(event),
          expired: (err) => err instanceof ServiceError && err.code === 'SESSION_EXPIRED',
          result: () => ({ executionId, success: false, error: enclaveError('SESSION_ENDED', formatMessage('SESSION_ENDED', {})), logs: [], stats: { duration: 0, toolCallCount: 0 } })
        })
        const opened = stream
        expiry = setTimeout(() => { opened.expire() }, Math.max(0, accepted.expiresAt - Date.now()))
        expiry.unref()
        reply.raw.on('close', () => { clearTimeout(expiry); if (!reply.raw.writableFinished) left.abort(); void opened.end() })
        void reply.code(200).header('content-type', CONTENT_TYPES[format!]).header('cache-control', 'no-cache').send(opened.body as never)
      }
      stream.write({ seq: ++seq, type, at: new Date().toISOString(), data })
    }

    const outcome = await executeScript(fastify.executionDeps, request.tenant, {
      executionId,
      log,
      code: body.code,
      language: body.language,
      timeoutMs: body.timeoutMs,
      ...(format !== undefined ? { onEvent: (event) => { send(event.type, event.data) }, signal: left.signal } : {})
    })
    if (!outcome.ran) {
      const refusal = refusalAnswer(outcome.refusal)
      if (refusal.retryAfterSeconds !== undefined) reply.header('retry-after', String(refusal.retryAfterSeconds))
      return await answer(refusal.status, refusal.body)
    }
    const { result } = outcome
    if (format === undefined) return await answer(200, result)
    send('final', { result })
    clearTimeout(expiry)
    await stream?.end()
    return reply
  })
}

export default sessionRoutes
