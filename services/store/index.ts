// The store used for everything counted across instances: see plugins/redis.ts.
export { StoreUnavailableError, type ConsumeResult, type LimitStore } from './limit-store.js'
export { createMemoryStore } from './memory-store.js'
export { createRedisStore, type RedisStoreOptions } from './redis-store.js'
export { utcDayWindow, type UtcDayWindow } from './utc-day-window.js'
