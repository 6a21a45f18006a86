import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import { ServiceError } from '../services/errors/index.ts'

/**
 * JSON bodies: strict UTF-8 (invalid bytes are a 400, not silently replaced), and Fastify's
 * secure parser, which refuses `__proto__` and `constructor.prototype` keys with a 400. Any
 * other Content-Type, text/plain included, is a 415.
 */
export default fp(async (fastify) => {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  // Every body this service reads is JSON: a text/plain one is a 415 that names application/json
  // (Fastify's own text/plain parser would hand the string to the schema, a confusing 400).
  fastify.removeContentTypeParser('text/plain')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string
    try {
      text = decoder.decode(body as Buffer)
    } catch {
      done(new ServiceError('BAD_REQUEST', { detail: 'Request body is not valid UTF-8' }), undefined)
      return
    }
    try {
      parseJson(request, text, (err: Error | null, value?: unknown) => { done(err as FastifyError | null, value) })
    } catch {
      // e.g. a stack overflow on absurdly deep nesting: still the client's malformed body
      done(new ServiceError('BAD_REQUEST', { detail: 'Request body is not valid JSON' }), undefined)
    }
  })
}, { name: 'json-body' })
