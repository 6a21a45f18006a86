import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { json, operation } from '../schemas/responses.ts'
import { ErrorBody, ServiceError } from '../services/errors/index.ts'

// Compared as digests, so the comparison takes the same time whatever the length or content.
const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** METRICS_TOKEN closes /metrics to everyone but a scraper that sends it as a bearer token. */
function metricsGuard (token: string) {
  const expected = digest(token)
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization
    if (header === undefined || header.trim() === '') throw new ServiceError('UNAUTHORIZED')
    const match = /^Bearer (.+)$/.exec(header)
    if (match === null || !timingSafeEqual(digest(match[1] as string), expected)) {
      throw new ServiceError('INVALID_TOKEN', { detail: 'The bearer token is not this service\'s METRICS_TOKEN: send Authorization: Bearer <METRICS_TOKEN>' }, {
        headers: { 'www-authenticate': 'Bearer realm="metrics", error="invalid_token"' }
      })
    }
  }
}

const metricsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const token = fastify.config.METRICS_TOKEN
  fastify.get('/metrics', {
    config: { rateLimit: false },
    ...(token !== undefined ? { onRequest: metricsGuard(token) } : {}),
    schema: operation('health', 'getMetrics', 'Prometheus metrics', 'The Prometheus text exposition format. Public unless METRICS_TOKEN is set, which a scraper then sends as a bearer token. Not rate-limited.', {
      ...(token !== undefined ? { security: [{ bearerAuth: [] }] } : {}),
      response: {
        200: { description: 'The metrics', content: { 'text/plain': { schema: Type.String({ description: 'Prometheus text exposition format' }) } } },
        401: json('METRICS_TOKEN is set and the request does not carry it (UNAUTHORIZED, INVALID_TOKEN)', ErrorBody)
      }
    })
  }, async (_request, reply) => {
    const { registry } = fastify.metrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default metricsRoutes
