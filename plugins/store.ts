import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createMemoryStore, createRedisStore, type LimitStore } from '../services/store/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Counters, leases and pub/sub shared by every instance (Redis), or by this one alone (memory). */
    store: LimitStore
    /** The raw client when REDIS_URL is set, for @fastify/rate-limit's store. */
    redis: Redis | null
  }
}

export default fp(async (fastify) => {
  const url = fastify.config.REDIS_URL
  if (url === undefined) {
    fastify.log.warn('REDIS_URL is not set: quotas, concurrency limits and rate limits are kept in process and hold for this one instance only')
    fastify.decorate('store', createMemoryStore())
    fastify.decorate('redis', null)
  } else {
    const { store, client } = createRedisStore(url)
    fastify.decorate('store', store)
    fastify.decorate('redis', client)
  }
  fastify.addHook('onClose', async () => { await fastify.store.close() })
}, { name: 'store', dependencies: ['config'] })
