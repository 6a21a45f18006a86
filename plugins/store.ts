import fp from 'fastify-plugin'
import { createMemoryStore, createRedisStore, type LimitStore } from '../services/store/index.ts'
import type { RedisClient } from '../services/store/redis-connection.ts'
import { redisUrl } from './config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Counters, leases and pub/sub shared by every instance (Redis), or by this one alone (memory). */
    store: LimitStore
    /** The raw client (one server or a cluster) when Redis is configured, for sessions and the executions' records. */
    redis: RedisClient | null
  }
}

export default fp(async (fastify) => {
  const url = redisUrl(fastify.config)
  if (url === undefined) {
    fastify.log.warn('REDIS_URL (or REDIS_CLUSTER_NODES) is not set: quotas, concurrency limits and rate limits are kept in process and hold for this one instance only')
    fastify.decorate('store', createMemoryStore())
    fastify.decorate('redis', null)
  } else {
    const { store, client } = createRedisStore(url)
    fastify.decorate('store', store)
    fastify.decorate<RedisClient | null>('redis', client)
  }
  fastify.addHook('onClose', async () => { await fastify.store.close() })
}, { name: 'store', dependencies: ['config'] })
