import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import { TtlCache } from '../ttl-cache.ts'
import { listToolSettings, type ToolRateLimit, type ToolSetting } from './tool-settings.ts'
import type { ToolDefinition } from './tool-definition.ts'

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

/**
 * The tools that exist, and each tenant's settings for them (tenant_tools), cached per tenant.
 */
export class ToolRegistry {
  private readonly byName: Map<string, ToolDefinition>
  private readonly settings: TtlCache<Map<string, ToolSetting>>

  private readonly db: AppDatabase

  constructor (db: AppDatabase, definitions: ToolDefinition[], cacheTtlMs: number) {
    this.db = db
    this.byName = new Map(definitions.map((definition) => [definition.name, definition]))
    this.settings = new TtlCache(cacheTtlMs)
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

  private async settingsOf (tenantId: string): Promise<Map<string, ToolSetting>> {
    return await this.settings.get(tenantId, async () => {
      const rows = await withTenant(this.db, tenantId, listToolSettings)
      return new Map(rows.map((row) => [row.tool, row]))
    })
  }
}
