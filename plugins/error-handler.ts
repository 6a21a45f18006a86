import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { validationMessage, type ValidationIssue } from '../services/errors/validation-message.ts'
import { isDependencyFailure, isHttpErrorCode, paramsOf, registry, ServiceError, type HttpErrorCode } from '../services/errors/index.ts'

// Fastify's own client errors (FST_*) are body problems: one registry code per status.
const FASTIFY_CODES: Record<number, HttpErrorCode> = {
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE'
}

// A 4xx whose code is not in the registry (a library's) is sent as the generic code of its
// status; a status without one is a fault of ours, and is sent as INTERNAL_ERROR.
const GENERIC_CODES: Record<number, HttpErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE'
}

/** A client's header value as a message may quote it: short, printable ASCII. */
function printable (value: string): string {
  const text = value.replace(/[^\x20-\x7e]/g, '?')
  return text.length > 100 ? `${text.slice(0, 100)}...` : text
}

/** The error as a registry error, or undefined for a fault (a 500 or a dependency's 503). */
function asServiceError (error: FastifyError, request: FastifyRequest): ServiceError | undefined {
  if (error instanceof ServiceError) return error
  if (error.validation !== undefined) {
    const part = error.validationContext ?? 'body'
    const schema = (request.routeOptions.schema as Record<string, unknown> | undefined)?.[part]
    return new ServiceError('BAD_REQUEST', { detail: validationMessage(part, error.validation as ValidationIssue[], schema) })
  }
  const status = error.statusCode ?? 500
  if (status === 413 && error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const limit = request.routeOptions.bodyLimit
    return new ServiceError('BODY_TOO_LARGE', { limit }, { fields: { limit } })
  }
  if (status === 415) {
    const type = request.headers['content-type']
    const sent = type === undefined || type.trim() === '' ? 'no Content-Type was sent' : `${printable(type)} was sent`
    return new ServiceError('UNSUPPORTED_MEDIA_TYPE', { sent })
  }
  if (status < 400 || status >= 500) return undefined
  // A library's error that carries one of our codes at its status: its message is the client's.
  if (isHttpErrorCode(error.code) && registry[error.code].status === status) return new ServiceError(error.code, paramsOf(error.code, error.message))
  const isFastify = error.code?.startsWith('FST_') === true
  const code = isFastify ? FASTIFY_CODES[status] ?? 'BAD_REQUEST' : GENERIC_CODES[status]
  if (!isFastify) request.log.warn({ err: error }, code === undefined ? 'a 4xx with a code outside the error registry, sent as a 500' : 'a 4xx with a code outside the error registry, sent as its status\'s generic code')
  if (code === undefined) return new ServiceError('INTERNAL_ERROR', {}, { cause: error })
  return new ServiceError(code, paramsOf(code, error.message))
}

async function send (reply: FastifyReply, error: ServiceError): Promise<FastifyReply> {
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds))
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value)
  return await reply.code(error.statusCode).send(error.body())
}

/**
 * The one error handler: only codes of the error registry leave it. A 4xx shows its message; a
 * dependency outage is a 503 with a clear body; anything else is a 500 whose details stay in
 * the log.
 */
export default fp(async (fastify) => {
  fastify.setErrorHandler(async (error: FastifyError, request, reply) => {
    const known = asServiceError(error, request)
    if (known !== undefined && known.code !== 'INTERNAL_ERROR' && known.code !== 'DEPENDENCY_UNAVAILABLE') return await send(reply, known)
    if (known?.code === 'DEPENDENCY_UNAVAILABLE' || isDependencyFailure(error) || error.statusCode === 503) {
      request.log.warn({ err: error }, 'dependency unavailable')
      return await send(reply, known?.code === 'DEPENDENCY_UNAVAILABLE' ? known : new ServiceError('DEPENDENCY_UNAVAILABLE'))
    }
    request.log.error({ err: error }, 'request failed')
    return await send(reply, new ServiceError('INTERNAL_ERROR'))
  })

  fastify.setNotFoundHandler(async (request, reply) => {
    return await reply.code(404).send({ error: 'Not Found', code: 'NOT_FOUND' satisfies HttpErrorCode, message: `Route ${request.method} ${request.url} not found` })
  })
}, { name: 'error-handler' })
