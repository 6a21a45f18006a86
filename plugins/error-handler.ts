import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import { isDependencyFailure } from '../services/errors.ts'

// Fastify's own client errors (FST_*) get one stable code per status; the rest are BAD_REQUEST.
const FASTIFY_CODES: Record<number, string> = {
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE'
}

/** A body a plugin built itself (the rate limit's errorResponseBuilder throws one): sent as is. */
function isPrebuiltBody (error: unknown): error is { statusCode: number, error: string } {
  return !(error instanceof Error) && typeof error === 'object' && error !== null &&
    typeof (error as { statusCode?: unknown }).statusCode === 'number' && typeof (error as { error?: unknown }).error === 'string'
}

/**
 * The one error handler: a 4xx shows its message and stable code; a dependency outage is a
 * 503 with a clear body; anything else is a 500 whose details stay in the log.
 */
export default fp(async (fastify) => {
  fastify.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (isPrebuiltBody(error) && error.statusCode >= 400 && error.statusCode < 500) {
      const { statusCode, ...body } = error
      return await reply.code(statusCode).send(body)
    }
    if (error.validation !== undefined) {
      return await reply.code(400).send({ error: 'Bad Request', code: 'BAD_REQUEST', message: error.message })
    }
    const status = error.statusCode ?? 500
    if (status >= 400 && status < 500) {
      const code = error.code?.startsWith('FST_') === true ? FASTIFY_CODES[status] ?? 'BAD_REQUEST' : error.code
      // A limit's size helps the client back off.
      const limit = (error as { limit?: unknown }).limit
      return await reply.code(status).send({ error: error.message, code, ...(typeof limit === 'number' ? { limit } : {}) })
    }
    if (isDependencyFailure(error) || status === 503) {
      request.log.warn({ err: error }, 'dependency unavailable')
      return await reply.code(503).send({ error: 'Service unavailable', code: 'DEPENDENCY_UNAVAILABLE', message: 'A backing service (PostgreSQL or Redis) is unreachable; retry later' })
    }
    request.log.error({ err: error }, 'request failed')
    return await reply.code(500).send({ error: 'Internal Server Error', code: 'INTERNAL_ERROR' })
  })

  fastify.setNotFoundHandler(async (request, reply) => {
    return await reply.code(404).send({ error: 'Not Found', code: 'NOT_FOUND', message: `Route ${request.method} ${request.url} not found` })
  })
}, { name: 'error-handler' })
