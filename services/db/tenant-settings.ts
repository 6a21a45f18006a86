// The SQL text that puts a statement or a transaction in a tenant's scope: every value a quoted
// literal, every setting local to its transaction (set_config(..., true)), so nothing outlives it
// (a transaction pooler hands the server connection to another client next).
import type { CompiledQuery } from 'kysely'
import pg from 'pg'

/**
 * A compiled query with its parameters written into the text as literals, for the simple
 * protocol (statementAsTenant). Strings are quoted by pg's escapeLiteral (see withTenant); a NUL, which
 * PostgreSQL text cannot hold and the wire would read as the end of the message, is refused.
 * The query's own text must hold no `$n` other than its placeholders: build it with Kysely.
 */
export function inlineParameters (query: CompiledQuery): string {
  return query.sql.replace(/\$(\d+)/g, (_, n: string) => sqlLiteral(query.parameters[Number(n) - 1]))
}

function sqlLiteral (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') {
    if (value.includes('\0')) throw new Error('A SQL literal cannot hold a NUL character')
    return pg.escapeLiteral(value)
  }
  // A negative number goes in parentheses: after a minus sign its own would start a comment (`--`).
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') return value < 0 ? `(${String(value)})` : String(value)
  if (typeof value === 'boolean') return String(value)
  throw new Error(`No SQL literal for a ${typeof value} parameter`)
}

/**
 * The settings that open a policy across tenants on purpose (migrations 007 and the usage
 * rollups'): a tenant transaction, and a non-tenant one unless it asks, sets them empty for
 * itself. Behind a transaction pooler a server connection is shared by every client with the
 * app role's login, and one of them may have left such a setting on it for the session.
 */
export const CROSS_TENANT_SETTINGS = ['app.tenant_directory', 'app.usage_directory'] as const

/**
 * `select set_config(...)` for the tenant, every value a quoted literal (see withTenant); no role
 * switch without appRole; a statement_timeout (local to the transaction, like the rest) when given.
 */
export function tenantSettings (tenantId: string, appRole: string | undefined, timeoutMs?: number): string {
  const lit = pg.escapeLiteral
  const role = appRole === undefined ? '' : `, set_config('role', ${lit(appRole)}, true)`
  const timeout = timeoutMs === undefined ? '' : `, set_config('statement_timeout', '${String(Math.max(1, Math.floor(timeoutMs)))}', true)`
  const closed = CROSS_TENANT_SETTINGS.map((name) => `, set_config('${name}', '', true)`).join('')
  return `select set_config('app.tenant_id', ${lit(tenantId)}, true)${role}, set_config('application_name', ${lit(applicationName(tenantId))}, true)${timeout}${closed}`
}

/**
 * `begin; select set_config(...)` (see tenantSettings); with `backendPid`, the same select also
 * answers `pid`, the backend the transaction runs on (what a cancel must name: cancelOnRunEnd).
 */
export function beginTenantTransaction (tenantId: string, appRole: string | undefined, timeoutMs?: number, backendPid = false): string {
  return `begin; ${tenantSettings(tenantId, appRole, timeoutMs)}${backendPid ? ', pg_backend_pid() as pid' : ''}`
}

// PostgreSQL keeps 63 bytes of application_name; tenant ids are ASCII (the token's pattern).
export function applicationName (tenantId: string): string {
  return `tenant:${tenantId}`.slice(0, 63)
}
