import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import { TtlCache } from '../ttl-cache.ts'
import { quotasFor, type QuotaOverrides, type TenantQuotas, type Tier } from './tiers.ts'

export interface TenantRecord {
  tenantId: string
  name: string | null
  tier: Tier
  quotaOverrides: QuotaOverrides
  quotas: TenantQuotas
  /** false when the tenant has no row: it is then `free` with no overrides. */
  registered: boolean
  createdAt: string | null
  updatedAt: string | null
}

export interface TenantUpdate {
  name?: string | null
  tier: Tier
  quotaOverrides?: QuotaOverrides
}

/** Tenants' tiers and overrides, read under RLS and cached briefly; every change drops the cache. */
export class TenantDirectory {
  private readonly cache: TtlCache<TenantRecord>

  private readonly db: AppDatabase

  constructor (db: AppDatabase, cacheTtlMs: number, options: { now?: () => number } = {}) {
    this.db = db
    this.cache = new TtlCache(cacheTtlMs, { now: options.now })
  }

  async get (tenantId: string): Promise<TenantRecord> {
    return await this.cache.get(tenantId, async () => await this.read(tenantId))
  }

  invalidate (tenantId: string): void {
    this.cache.delete(tenantId)
  }

  async upsert (tenantId: string, update: TenantUpdate): Promise<TenantRecord> {
    const overrides = update.quotaOverrides ?? {}
    await withTenant(this.db, tenantId, async (trx) => {
      await trx.insertInto('tenants')
        .values({ tenant_id: tenantId, name: update.name ?? null, tier: update.tier, quota_overrides: JSON.stringify(overrides) })
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet({
          name: update.name ?? null,
          tier: update.tier,
          quota_overrides: JSON.stringify(overrides),
          updated_at: new Date()
        }))
        .execute()
    })
    this.invalidate(tenantId)
    return await this.read(tenantId)
  }

  private async read (tenantId: string): Promise<TenantRecord> {
    const row = await withTenant(this.db, tenantId, async (trx) =>
      await trx.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst())
    if (row === undefined) {
      return { tenantId, name: null, tier: 'free', quotaOverrides: {}, quotas: quotasFor('free'), registered: false, createdAt: null, updatedAt: null }
    }
    const overrides = row.quota_overrides
    return {
      tenantId,
      name: row.name,
      tier: row.tier,
      quotaOverrides: overrides,
      quotas: quotasFor(row.tier, overrides),
      registered: true,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString()
    }
  }
}
