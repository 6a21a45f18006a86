import fp from 'fastify-plugin'
import { createMemorySessionStore, createRedisSessionStore } from '../services/sessions/session-store.ts'
import { createSessionService, type SessionService } from '../services/sessions/session-service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Encrypted sessions: in Redis when REDIS_URL is set (any instance serves them), else in process. */
    sessions: SessionService
  }
}

export default fp(async (fastify) => {
  const store = fastify.redis === null ? createMemorySessionStore() : createRedisSessionStore(fastify.redis)
  fastify.decorate('sessions', createSessionService({
    store,
    identity: fastify.sessionIdentity,
    ttlMs: fastify.config.SESSION_TTL_SECONDS * 1000
  }))
  fastify.addHook('onClose', async () => { await store.close() })
}, { name: 'sessions', dependencies: ['config', 'store', 'session-identity'] })
