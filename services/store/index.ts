// The store used for everything counted across instances: see plugins/store.ts.
export { StoreUnavailableError, type AdmitCounter, type ConsumeResult, type LimitStore } from './limit-store.ts'
export { createMemoryStore } from './memory-store.ts'
export { createRedisStore, type RedisStoreOptions } from './redis-store.ts'
export { utcDayNumber, utcDayWindow, type UtcDayWindow } from './utc-day-window.ts'
