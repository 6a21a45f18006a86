import { withAppRole } from '../db/with-app-role.ts'
import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import { TtlCache } from '../ttl-cache.ts'
import { quotasFor, type PerUserQuotas, type QuotaOverrides, type TenantQuotas, type Tier } from './tiers.ts'

export interface TenantRecord {
  tenantId: string
  name: string | null
  tier: Tier
  quotaOverrides: QuotaOverrides
  quotas: TenantQuotas
  /** Daily limits for each of the tenant's end users; {} when none. */
  perUser: PerUserQuotas
  /** The sandbox modules its scripts may import; null: every module the build offers. */
  sandboxModules: string[] | null
  /** false when the tenant has no row: it is then `free` with no overrides. */
  registered: boolean
  createdAt: string | null
  updatedAt: string | null
}

/** One line of the tenant list (GET /admin/tenants): registered tenants only. */
export interface TenantSummary {
  tenantId: string
  name: string | null
  tier: Tier
  createdAt: string
}

export interface TenantListQuery {
  /** A case-insensitive substring of the id or the name; empty or absent lists every tenant. */
  search?: string
  limit: number
  /** The last tenant id of the previous page: the list is alphabetical by id. */
  after?: string
}

export interface TenantPage {
  tenants: TenantSummary[]
  /** Pass as `after` for the next page; null on the last one. */
  nextAfter: string | null
}

/** `%`, `_` and `\` match themselves in the search, not as LIKE wildcards. */
function likePattern (search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}

export interface TenantUpdate {
  name?: string | null
  tier: Tier
  quotaOverrides?: QuotaOverrides
  perUser?: PerUserQuotas
  /** Narrows the sandbox modules (absent or null: all of them). */
  sandboxModules?: string[] | null
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

  /**
   * Registered tenants, alphabetical by id, filtered by a case-insensitive substring of id or
   * name. The tenants table's RLS shows one tenant per transaction; this read-only list runs
   * in a transaction that turns on the tenant_directory policy (migrations/007), which shows
   * every row to SELECT and nothing more. Only the admin route calls it.
   */
  async list (query: TenantListQuery): Promise<TenantPage> {
    const rows = await withAppRole(this.db, async (trx) => {
      let select = trx.selectFrom('tenants').select(['tenant_id', 'name', 'tier', 'created_at'])
      const search = query.search?.trim() ?? ''
      if (search !== '') {
        const pattern = likePattern(search)
        select = select.where((eb) => eb.or([eb('tenant_id', 'ilike', pattern), eb('name', 'ilike', pattern)]))
      }
      if (query.after !== undefined) select = select.where('tenant_id', '>', query.after)
      // One more than asked: whether there is a next page.
      return await select.orderBy('tenant_id').limit(query.limit + 1).execute()
    }, { 'app.tenant_directory': 'on' })
    const page = rows.slice(0, query.limit)
    return {
      tenants: page.map((row) => ({ tenantId: row.tenant_id, name: row.name, tier: row.tier, createdAt: new Date(row.created_at).toISOString() })),
      nextAfter: rows.length > query.limit ? (page[page.length - 1]?.tenant_id ?? null) : null
    }
  }

  invalidate (tenantId: string): void {
    this.cache.delete(tenantId)
  }

  async upsert (tenantId: string, update: TenantUpdate): Promise<TenantRecord> {
    const overrides = update.quotaOverrides ?? {}
    const perUser = JSON.stringify(update.perUser ?? {})
    const sandboxModules = update.sandboxModules === undefined || update.sandboxModules === null ? null : JSON.stringify(update.sandboxModules)
    await withTenant(this.db, tenantId, async (trx) => {
      await trx.insertInto('tenants')
        .values({ tenant_id: tenantId, name: update.name ?? null, tier: update.tier, quota_overrides: JSON.stringify(overrides), per_user_quotas: perUser, sandbox_modules: sandboxModules })
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet({
          name: update.name ?? null,
          tier: update.tier,
          quota_overrides: JSON.stringify(overrides),
          per_user_quotas: perUser,
          sandbox_modules: sandboxModules,
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
      return { tenantId, name: null, tier: 'free', quotaOverrides: {}, quotas: quotasFor('free'), perUser: {}, sandboxModules: null, registered: false, createdAt: null, updatedAt: null }
    }
    const overrides = row.quota_overrides
    return {
      tenantId,
      name: row.name,
      tier: row.tier,
      quotaOverrides: overrides,
      quotas: quotasFor(row.tier, overrides),
      perUser: row.per_user_quotas,
      sandboxModules: row.sandbox_modules ?? null,
      registered: true,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString()
    }
  }
}
