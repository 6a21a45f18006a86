import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import { TtlCache } from '../ttl-cache.ts'
import { deleteToolSetting, listToolSettings, putToolSetting, type ToolRateLimit, type ToolSetting, type ToolSettingUpdate } from './tool-settings.ts'
import type { ToolDefinition, ToolLimits } from './tool-definition.ts'

/** A tool as one tenant sees it: the definition plus that tenant's setting. */
export interface TenantTool {
  definition: ToolDefinition
  enabled: boolean
  rateLimit: ToolRateLimit | null
  config: Record<string, unknown>
}

/** A tool without a setting is enabled, unlimited, with an empty config. */
function asSeenBy (definition: ToolDefinition, setting: ToolSetting | undefined): TenantTool {
  return { definition, enabled: setting?.enabled ?? true, rateLimit: setting?.rateLimit ?? null, config: setting?.config ?? {} }
}

export interface ToolRegistryOptions {
  cacheTtlMs: number
  /** What every call of every tool is held to. */
  limits: ToolLimits & {
    /** Tool calls one run may have in progress at once (TOOL_MAX_CONCURRENT_PER_RUN). */
    maxConcurrentPerRun: number
  }
  /** Drops the tenant's cached settings here and on every other instance (pub/sub). */
  announceChange?: (tenantId: string) => Promise<void>
  now?: () => number
}

/**
 * The tools that exist, and each tenant's settings for them (tenant_tools), cached per tenant.
 * Setting writes go through here too, so the cache is dropped wherever a setting changes.
 */
export class ToolRegistry {
  readonly limits: ToolRegistryOptions['limits']
  private readonly byName: Map<string, ToolDefinition>
  private readonly settings: TtlCache<Map<string, ToolSetting>>
  private readonly db: AppDatabase
  private readonly announceChange: (tenantId: string) => Promise<void>

  constructor (db: AppDatabase, definitions: ToolDefinition[], options: ToolRegistryOptions) {
    this.db = db
    this.byName = new Map(definitions.map((definition) => [definition.name, definition]))
    this.settings = new TtlCache(options.cacheTtlMs, { now: options.now })
    this.limits = options.limits
    this.announceChange = options.announceChange ?? (async (tenantId) => { this.invalidate(tenantId) })
  }

  definitions (): ToolDefinition[] {
    return [...this.byName.values()]
  }

  has (name: string): boolean {
    return this.byName.has(name)
  }

  /** The tool for this tenant, or undefined when no such tool exists. */
  async get (tenantId: string, name: string): Promise<TenantTool | undefined> {
    const definition = this.byName.get(name)
    if (definition === undefined) return undefined
    return asSeenBy(definition, (await this.settingsOf(tenantId)).get(name))
  }

  async list (tenantId: string): Promise<TenantTool[]> {
    const settings = await this.settingsOf(tenantId)
    return this.definitions().map((definition) => asSeenBy(definition, settings.get(definition.name)))
  }

  invalidate (tenantId: string): void {
    this.settings.delete(tenantId)
  }

  /** Stores the tenant's setting for a known tool and drops every instance's cached copy. */
  async putSetting (tenantId: string, tool: string, update: ToolSettingUpdate): Promise<ToolSetting> {
    const setting = await withTenant(this.db, tenantId, async (trx) => await putToolSetting(trx, tenantId, tool, update))
    await this.announceChange(tenantId)
    return setting
  }

  /** Removes the tenant's setting (the tool returns to its default); true when one existed. */
  async deleteSetting (tenantId: string, tool: string): Promise<boolean> {
    const existed = await withTenant(this.db, tenantId, async (trx) => await deleteToolSetting(trx, tool))
    await this.announceChange(tenantId)
    return existed
  }

  private async settingsOf (tenantId: string): Promise<Map<string, ToolSetting>> {
    return await this.settings.get(tenantId, async () => {
      const rows = await withTenant(this.db, tenantId, listToolSettings)
      return new Map(rows.map((row) => [row.tool, row]))
    })
  }
}
