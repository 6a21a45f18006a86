import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
import { reservingRateStore } from '../services/quotas/request-rate-reservation.ts'
import { ServiceError } from '../services/errors/index.ts'
import { tenantTag } from '../services/quotas/counter-keys.ts'

const NAME_SPACE = 'tenant-enclave:rate:'

/**
 * Per-tenant request rate limit (RATE_LIMIT_PER_MINUTE). It runs as a preHandler, after the
 * route's onRequest authentication, so the key is the tenant; unauthenticated routes fall back to
 * the client address. With Redis the window is shared by every instance, and each instance
 * reserves a key's requests in blocks (services/quotas/request-rate-reservation.ts), so most
 * requests make no Redis round trip for it; without Redis the plugin's own in-process store counts.
 */
export default fp(async (fastify) => {
  await fastify.register(fastifyRateLimit, {
    global: true,
    hook: 'preHandler',
    max: fastify.config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    nameSpace: NAME_SPACE,
    // The per-minute limit fails open when Redis is away; quotas (admission) still fail closed.
    skipOnError: true,
    ...(fastify.store.kind === 'redis' ? { store: reservingRateStore(fastify.store, NAME_SPACE) } : {}),
    // A tenant's window carries its hash tag, so it sits in the tenant's cluster slot.
    keyGenerator: (request) => request.tenant?.tenantId !== undefined ? `tenant:${tenantTag(request.tenant.tenantId)}` : `ip:${request.ip}`,
    // Thrown by the plugin, answered by the error handler (the plugin has set Retry-After).
    errorResponseBuilder: (_request, context) => new ServiceError('RATE_LIMITED', { what: `at most ${context.max} requests per minute`, after: context.after }, { fields: { limit: context.max } })
  })
}, { name: 'rate-limit', dependencies: ['config', 'store', 'auth'] })
