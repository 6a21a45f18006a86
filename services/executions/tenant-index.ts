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
