import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import { TtlCache } from '../ttl-cache.ts'
import { deleteToolSetting, listToolSettings, putToolSetting, type ToolRateLimit, type ToolSetting, type ToolSettingUpdate } from './tool-settings.ts'
import type { ApprovalMode, ToolDefinition, ToolLimits } from './tool-definition.ts'
import type { HttpToolRunner } from './http-tool-runner.ts'

/** A tool as one tenant sees it: the definition plus that tenant's setting. */
export interface TenantTool {
  definition: ToolDefinition
  enabled: boolean
  rateLimit: ToolRateLimit | null
  config: Record<string, unknown>
  /** The tenant's override, else the tool's default, else never. */
  approval: ApprovalMode
}

/**
 * A tool without a setting follows its defaultEnabled (built-ins: enabled; platform tools: off
 * unless the admin said otherwise), unlimited, with an empty config.
 */
function asSeenBy (definition: ToolDefinition, setting: ToolSetting | undefined): TenantTool {
  return { definition, enabled: setting?.enabled ?? definition.defaultEnabled ?? true, rateLimit: setting?.rateLimit ?? null, config: setting?.config ?? {}, approval: setting?.approval ?? definition.approval ?? 'never' }
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
  /** The platform's HTTP tools (platform_tools), merged after the built-ins. */
  loadPlatformTools?: () => Promise<ToolDefinition[]>
  /** Drops the cached catalogue here and on every other instance. */
  announceCatalogueChange?: () => Promise<void>
  /** Runs platform tools' calls. */
  httpRunner?: HttpToolRunner
  now?: () => number
}

const CATALOGUE = 'catalogue'

/**
 * The tools that exist, and each tenant's settings for them (tenant_tools), cached per tenant.
 * Setting writes go through here too, so the cache is dropped wherever a setting changes.
 */
export class ToolRegistry {
  readonly limits: ToolRegistryOptions['limits']
  readonly httpRunner: HttpToolRunner | undefined
  private readonly builtins: Map<string, ToolDefinition>
  private readonly settings: TtlCache<Map<string, ToolSetting>>
  private readonly catalogue: TtlCache<Map<string, ToolDefinition>>
  private readonly db: AppDatabase
  private readonly announceChange: (tenantId: string) => Promise<void>
  private readonly loadPlatformTools: () => Promise<ToolDefinition[]>
  private readonly announceCatalogueChange: () => Promise<void>
  /** The last catalogue loaded, kept past its TTL: only for `isKnownName`, which must not wait. */
  private lastCatalogue: ReadonlyMap<string, ToolDefinition> = new Map()

  constructor (db: AppDatabase, definitions: ToolDefinition[], options: ToolRegistryOptions) {
    this.db = db
    this.builtins = new Map(definitions.map((definition) => [definition.name, definition]))
    this.settings = new TtlCache(options.cacheTtlMs, { now: options.now })
    this.catalogue = new TtlCache(options.cacheTtlMs, { now: options.now })
    this.limits = options.limits
    this.httpRunner = options.httpRunner
    this.announceChange = options.announceChange ?? (async (tenantId) => { this.invalidate(tenantId) })
    this.loadPlatformTools = options.loadPlatformTools ?? (async () => [])
    this.announceCatalogueChange = options.announceCatalogueChange ?? (async () => { this.invalidateCatalogue() })
  }

  /** Built-in and platform tools, built-ins first (a platform tool never shadows one). */
  async definitions (): Promise<ToolDefinition[]> {
    return [...(await this.byName()).values()]
  }

  isBuiltin (name: string): boolean {
    return this.builtins.has(name)
  }

  builtinNames (): Set<string> {
    return new Set(this.builtins.keys())
  }

  /**
   * Whether `name` is a built-in or was in the last catalogue loaded, answered at once. For labels
   * and the like, where a name a script made up must not pass (it may be anything); never for a
   * decision about a call.
   */
  isKnownName (name: string): boolean {
    return this.builtins.has(name) || this.lastCatalogue.has(name)
  }

  async has (name: string): Promise<boolean> {
    return (await this.byName()).has(name)
  }

  /** The tool for this tenant, or undefined when no such tool exists. */
  async get (tenantId: string, name: string): Promise<TenantTool | undefined> {
    const definition = (await this.byName()).get(name)
    if (definition === undefined) return undefined
    return asSeenBy(definition, (await this.settingsOf(tenantId)).get(name))
  }

  async list (tenantId: string): Promise<TenantTool[]> {
    const [definitions, settings] = await Promise.all([this.definitions(), this.settingsOf(tenantId)])
    return definitions.map((definition) => asSeenBy(definition, settings.get(definition.name)))
  }

  invalidate (tenantId: string): void {
    this.settings.delete(tenantId)
  }

  invalidateCatalogue (): void {
    this.catalogue.delete(CATALOGUE)
  }

  /** After an admin changed a platform tool: every instance reloads the catalogue. */
  async catalogueChanged (): Promise<void> {
    await this.announceCatalogueChange()
  }

  private async byName (): Promise<Map<string, ToolDefinition>> {
    return await this.catalogue.get(CATALOGUE, async () => {
      const merged = new Map(this.builtins)
      for (const definition of await this.loadPlatformTools()) {
        if (!merged.has(definition.name)) merged.set(definition.name, definition)
      }
      this.lastCatalogue = merged
      return merged
    })
  }

  /** Stores the tenant's setting for a known tool and drops every instance's cached copy. */
  async putSetting (tenantId: string, tool: string, update: ToolSettingUpdate): Promise<ToolSetting> {
    const defaultEnabled = (await this.byName()).get(tool)?.defaultEnabled ?? true
    const setting = await withTenant(this.db, tenantId, async (trx) => await putToolSetting(trx, tenantId, tool, update, defaultEnabled))
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
