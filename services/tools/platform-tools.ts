import { sql } from 'kysely'
import type { TSchema } from 'typebox'
import type { AppDatabase } from '../db/with-tenant.ts'
import { ServiceError } from '../errors/index.ts'
import { withAppRole } from '../db/with-app-role.ts'
import { schemaProblem, withoutCodeKeywords } from './schema-validation.ts'
import type { ApprovalMode, HttpMethod, HttpToolSpec, ToolDefinition } from './tool-definition.ts'

export const PLATFORM_TOOL_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$'
export const DEFAULT_TIMEOUT_MS = 10_000
export const DEFAULT_MAX_RESPONSE_KB = 1024
// `{name}` in a URL's path or query: filled from the args of the same name.
const PLACEHOLDER = /\{([A-Za-z0-9_.-]+)\}/g

/** A platform tool as the admin routes show it. */
export interface PlatformTool {
  name: string
  description: string
  argsSchema: Record<string, unknown>
  resultSchema: Record<string, unknown> | null
  http: HttpToolSpec
  defaultEnabled: boolean
  approval: ApprovalMode
  version: number
  createdAt: string
  updatedAt: string
}

export interface PlatformToolInput {
  description: string
  argsSchema: Record<string, unknown>
  resultSchema?: Record<string, unknown>
  http: { method: HttpMethod, url: string, timeoutMs?: number, maxResponseKB?: number, queryArgs?: string[], bodyArg?: string }
  defaultEnabled?: boolean
  approval?: ApprovalMode
}

// The one rejection that is about the upstream, not the definition: an import refuses it whole.
const UPSTREAM_NOT_LISTED = 'upstream-not-listed'

/** A definition the admin may not store: 400 INVALID_TOOL with `detail` as its message. */
function rejected (detail: string, reason?: string): ServiceError<'INVALID_TOOL'> {
  return new ServiceError('INVALID_TOOL', { detail }, reason === undefined ? {} : { reason })
}

/** True for a rejection of one definition, which an OpenAPI import skips rather than failing whole. */
export function isDefinitionRejection (err: unknown): err is ServiceError<'INVALID_TOOL'> {
  return err instanceof ServiceError && err.code === 'INVALID_TOOL' && err.reason !== UPSTREAM_NOT_LISTED
}

/** The placeholder names of a URL template, in order. */
export function placeholders (url: string): string[] {
  return [...url.matchAll(PLACEHOLDER)].map((m) => m[1] as string)
}

/** The normalised origin of each allowed upstream (TOOL_UPSTREAMS). */
export function normaliseOrigins (origins: string[]): Set<string> {
  return new Set(origins.map((origin) => new URL(origin).origin))
}

/**
 * Checks a definition before it is stored: name, URL (absolute http(s), an allowed origin, no
 * placeholder before the path), schemas (JSON Schema 2020-12 that Ajv compiles). Throws
 * INVALID_TOOL (ServiceError); returns the definition with its defaults filled in.
 */
export function checkPlatformTool (
  name: string,
  input: PlatformToolInput,
  context: { builtinNames: Set<string>, upstreams: Set<string> }
): Omit<PlatformTool, 'version' | 'createdAt' | 'updatedAt'> {
  if (!new RegExp(PLATFORM_TOOL_NAME_PATTERN).test(name)) throw rejected(`Invalid tool name: ${name}`)
  if (context.builtinNames.has(name)) throw rejected(`${name} is a built-in tool and cannot be redefined`)
  const { url } = input.http
  let parsed: URL
  try {
    // The template's braces are not valid in a host, which is the point: they may not be there.
    parsed = new URL(url)
  } catch {
    throw rejected(`http.url is not an absolute URL: ${url}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw rejected('http.url must be http or https')
  if (parsed.username !== '' || parsed.password !== '') throw rejected('http.url must not carry credentials')
  if (parsed.hash !== '') throw rejected('http.url must not have a fragment')
  const originPart = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(url)?.[0] ?? url
  if (/[{}]|%7B/i.test(originPart)) throw rejected('http.url: placeholders may appear only in the path and query')
  if (!context.upstreams.has(parsed.origin)) {
    throw rejected(`http.url origin ${parsed.origin} is not listed in TOOL_UPSTREAMS`, UPSTREAM_NOT_LISTED)
  }
  for (const [label, schema] of [['argsSchema', input.argsSchema], ['resultSchema', input.resultSchema]] as const) {
    if (schema === undefined) continue
    const problem = schemaProblem(schema)
    if (problem !== null) throw rejected(`${label} is not a valid JSON Schema: ${problem}`)
  }
  const argsType = input.argsSchema.type
  if (argsType !== undefined && argsType !== 'object') throw rejected('argsSchema must describe an object (type "object")')
  return {
    name,
    description: input.description,
    // Stored without keywords that would write the admin's text into agents' declarations.
    argsSchema: withoutCodeKeywords(input.argsSchema),
    resultSchema: input.resultSchema === undefined ? null : withoutCodeKeywords(input.resultSchema),
    http: {
      method: input.http.method,
      url,
      timeoutMs: input.http.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxResponseKB: input.http.maxResponseKB ?? DEFAULT_MAX_RESPONSE_KB,
      ...(input.http.queryArgs === undefined ? {} : { queryArgs: input.http.queryArgs }),
      ...(input.http.bodyArg === undefined ? {} : { bodyArg: input.http.bodyArg })
    },
    defaultEnabled: input.defaultEnabled ?? false,
    approval: input.approval ?? 'never'
  }
}

const COLUMNS = ['name', 'description', 'args_schema', 'result_schema', 'http', 'default_enabled', 'approval', 'version', 'created_at', 'updated_at'] as const

function toTool (row: { name: string, description: string, args_schema: Record<string, unknown>, result_schema: Record<string, unknown> | null, http: unknown, default_enabled: boolean, approval: ApprovalMode, version: number, created_at: Date, updated_at: Date }): PlatformTool {
  return {
    name: row.name,
    description: row.description,
    argsSchema: row.args_schema,
    resultSchema: row.result_schema,
    http: row.http as HttpToolSpec,
    defaultEnabled: row.default_enabled,
    approval: row.approval,
    version: row.version,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString()
  }
}

export async function listPlatformTools (db: AppDatabase): Promise<PlatformTool[]> {
  const rows = await withAppRole(db, async (trx) => await trx.selectFrom('platform_tools').select(COLUMNS).orderBy('name').execute())
  return rows.map(toTool)
}

export async function getPlatformTool (db: AppDatabase, name: string): Promise<PlatformTool | undefined> {
  const row = await withAppRole(db, async (trx) => await trx.selectFrom('platform_tools').select(COLUMNS).where('name', '=', name).executeTakeFirst())
  return row === undefined ? undefined : toTool(row)
}

export async function putPlatformTool (db: AppDatabase, tool: Omit<PlatformTool, 'version' | 'createdAt' | 'updatedAt'>): Promise<PlatformTool> {
  const values = {
    description: tool.description,
    args_schema: JSON.stringify(tool.argsSchema),
    result_schema: JSON.stringify(tool.resultSchema),
    http: JSON.stringify(tool.http),
    default_enabled: tool.defaultEnabled,
    approval: tool.approval,
    updated_at: new Date()
  }
  const row = await withAppRole(db, async (trx) => await trx.insertInto('platform_tools')
    .values({ name: tool.name, ...values })
    .onConflict((oc) => oc.column('name').doUpdateSet({ ...values, version: sql`platform_tools.version + 1` }))
    .returning(COLUMNS)
    .executeTakeFirstOrThrow())
  return toTool(row)
}

export async function deletePlatformTool (db: AppDatabase, name: string): Promise<boolean> {
  const result = await withAppRole(db, async (trx) => await trx.deleteFrom('platform_tools').where('name', '=', name).executeTakeFirst())
  return result.numDeletedRows > 0n
}

/** The tool as the registry and the gateway use it. */
export function toDefinition (tool: PlatformTool): ToolDefinition {
  return {
    name: tool.name,
    description: tool.description,
    // JSON Schema, as TypeBox schemas are: /api/tools shows it as is; Ajv validates it.
    argsSchema: tool.argsSchema as unknown as TSchema,
    ...(tool.resultSchema === null ? {} : { resultSchema: tool.resultSchema }),
    defaultEnabled: tool.defaultEnabled,
    approval: tool.approval,
    http: tool.http,
    version: tool.version,
    run: async () => { throw new Error(`${tool.name} is an HTTP tool: the gateway's HTTP runner calls it`) }
  }
}
