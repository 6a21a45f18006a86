import fp from 'fastify-plugin'
import { TenantDirectory } from '../services/tenants/tenant-directory.ts'
import { openInvalidationChannel } from '../services/invalidation-channel.ts'

const TENANT_CHANGED_CHANNEL = 'tenant-enclave:tenant-changed'

declare module 'fastify' {
  interface FastifyInstance {
    tenants: TenantDirectory
    /** Drops the tenant's cached row here and, through pub/sub, on every other instance. */
    announceTenantChange: (tenantId: string) => Promise<void>
  }
}

export default fp(async (fastify) => {
  const tenants = new TenantDirectory(fastify.db, fastify.config.TENANT_CACHE_TTL_MS)
  fastify.decorate('tenants', tenants)
  const invalidations = openInvalidationChannel(fastify.store, TENANT_CHANGED_CHANNEL, (tenantId) => { tenants.invalidate(tenantId) }, fastify.log)
  fastify.decorate('announceTenantChange', invalidations.announce)
  fastify.addHook('onClose', async () => { invalidations.close() })
}, { name: 'tenants', dependencies: ['config', 'db', 'store'] })
