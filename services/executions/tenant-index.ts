import type { RedisClient } from '../store/redis-connection.ts'

/** Tenants that have executions, so retention can prune them one tenant (one RLS scope) at a time. */
export interface TenantIndex {
  add (tenantId: string): Promise<void>
  list (): Promise<string[]>
  remove (tenantId: string): Promise<void>
}

export function createMemoryTenantIndex (): TenantIndex {
  const tenants = new Set<string>()
  return {
    async add (tenantId) { tenants.add(tenantId) },
    async list () { return [...tenants] },
    async remove (tenantId) { tenants.delete(tenantId) }
  }
}

// One global set, touched by single-key commands only: any slot will do.
const TENANT_INDEX_KEY = 'tenant-enclave:executions:tenants'

/** Shared by every instance, so whichever prunes sees every tenant's executions. */
export function createRedisTenantIndex (redis: RedisClient): TenantIndex {
  return {
    async add (tenantId) { await redis.sadd(TENANT_INDEX_KEY, tenantId) },
    async list () { return await redis.smembers(TENANT_INDEX_KEY) },
    async remove (tenantId) { await redis.srem(TENANT_INDEX_KEY, tenantId) }
  }
}
