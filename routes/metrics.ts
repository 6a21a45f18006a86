import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
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
    schema: {
      tags: ['health'],
      summary: 'Prometheus metrics',
      produces: ['text/plain'],
      ...(token !== undefined ? { security: [{ bearerAuth: [] }] } : {}),
      response: { 200: Type.String({ description: 'Prometheus text exposition format' }), 401: ErrorBody }
    }
  }, async (_request, reply) => {
    const { registry } = fastify.metrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default metricsRoutes
