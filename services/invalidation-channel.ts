import type { FastifyBaseLogger } from 'fastify'
import type { LimitStore } from './store/index.ts'

const RESUBSCRIBE_MS = 2000

export interface InvalidationChannel {
  /** Drops the tenant's entry here at once and tells every other instance to do the same. */
  announce: (tenantId: string) => Promise<void>
  close: () => void
}

/**
 * Keeps per-instance caches coherent across instances through the store's pub/sub. If the
 * store is down at start, the service still starts and keeps trying to subscribe; meanwhile, and
 * whenever a notice is lost, the other instances' copies expire within the cache TTL.
 */
export function openInvalidationChannel (
  store: LimitStore,
  channel: string,
  invalidate: (tenantId: string) => void,
  log: FastifyBaseLogger
): InvalidationChannel {
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const subscribe = async (): Promise<void> => {
    try {
      await store.subscribe(channel, invalidate)
    } catch (err) {
      if (closed) return
      log.warn({ err, channel }, 'cannot subscribe to cache invalidations yet; retrying')
      timer = setTimeout(() => { void subscribe() }, RESUBSCRIBE_MS)
      timer.unref()
    }
  }
  void subscribe()
  return {
    announce: async (tenantId: string) => {
      invalidate(tenantId)
      try {
        await store.publish(channel, tenantId)
      } catch (err) {
        log.warn({ err, tenantId, channel }, 'could not announce a cache invalidation to other instances')
      }
    },
    close: () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
    }
  }
}
