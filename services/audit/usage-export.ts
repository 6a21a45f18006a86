import { sql } from 'kysely'
import { withAppRole } from '../db/with-app-role.ts'
import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import { ServiceError } from '../errors/index.ts'
import { DAY_MS, OWN_TENANT, type SummedDayColumns } from './usage-history.ts'

export type ExportFormat = 'csv' | 'ndjson'

/** The longest range one export covers: a year (366 days, first and last included). */
export const MAX_EXPORT_DAYS = 366

/** The columns of a tenant's export, in order; the platform's adds tenantId after date. */
export const EXPORT_COLUMNS = ['date', 'userId', 'executions', 'failures', 'toolCalls', 'cpuMs', 'wallMs', 'bytesIn', 'bytesOut'] as const
export const ADMIN_EXPORT_COLUMNS = ['date', 'tenantId', 'userId', 'executions', 'failures', 'toolCalls', 'cpuMs', 'wallMs', 'bytesIn', 'bytesOut'] as const

/** Rows read per transaction: an export of any size holds one page in memory and no transaction while it is sent. */
const PAGE_ROWS = 5000

export interface ExportRange { from: string, to: string }

const DATE = /^\d{4}-\d{2}-\d{2}$/

function dayMs (name: string, value: string): number {
  const ms = DATE.test(value) ? Date.parse(`${value}T00:00:00Z`) : Number.NaN
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== value) {
    throw new ServiceError('BAD_REQUEST', { detail: `querystring/${name} must be a calendar date as YYYY-MM-DD (UTC), e.g. ${new Date().toISOString().slice(0, 10)}; got '${value}'` })
  }
  return ms
}

/** Checks an export's range: real dates, from ≤ to, at most MAX_EXPORT_DAYS days. 400 BAD_REQUEST otherwise, saying what to send. */
export function checkExportRange (range: ExportRange): ExportRange {
  const from = dayMs('from', range.from)
  const to = dayMs('to', range.to)
  if (from > to) throw new ServiceError('BAD_REQUEST', { detail: `querystring: from (${range.from}) is after to (${range.to}): send from on or before to` })
  const days = (to - from) / DAY_MS + 1
  if (days > MAX_EXPORT_DAYS) {
    throw new ServiceError('BAD_REQUEST', { detail: `querystring: the range covers ${days} days; an export covers at most ${MAX_EXPORT_DAYS}: split it into several requests` })
  }
  return range
}

interface Row extends SummedDayColumns {
  tenant_id: string
  user_id: string
}

type ExportRow = { [K in typeof ADMIN_EXPORT_COLUMNS[number]]: K extends 'date' | 'tenantId' | 'userId' ? string : number }

function toRecord (row: Row): ExportRow {
  return {
    date: row.day,
    tenantId: row.tenant_id,
    userId: row.user_id,
    executions: Number(row.executions),
    failures: Number(row.failures),
    toolCalls: Number(row.tool_calls),
    cpuMs: Number(row.cpu_ms),
    wallMs: Number(row.wall_ms),
    bytesIn: Number(row.bytes_in),
    bytesOut: Number(row.bytes_out)
  }
}

/** RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled. */
function csvField (value: string | number): string {
  const text = String(value)
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

function formatter (format: ExportFormat, columns: readonly string[]): { head: string, line: (r: ExportRow) => string } {
  const pick = (r: ExportRow): Array<[string, string | number]> => columns.map((c) => [c, r[c as keyof ExportRow]])
  if (format === 'csv') return { head: `${columns.join(',')}\r\n`, line: (r) => `${pick(r).map(([, v]) => csvField(v)).join(',')}\r\n` }
  return { head: '', line: (r) => `${JSON.stringify(Object.fromEntries(pick(r)))}\n` }
}

const SELECT = sql`select to_char(day, 'YYYY-MM-DD') as day, tenant_id, user_id, executions, failures, tool_calls, cpu_ms, wall_ms, bytes_in, bytes_out from usage_daily`

/**
 * A tenant's daily rows per user from the rollup, by date then user: `userId` limits it to one
 * user. Read a page at a time by key (each page its own tenant transaction, scoped by RLS), so
 * the response streams whatever its size.
 */
export async function * tenantUsageExport (db: AppDatabase, tenantId: string, range: ExportRange, format: ExportFormat, userId?: string): AsyncGenerator<string> {
  const { head, line } = formatter(format, EXPORT_COLUMNS)
  const user = userId === undefined ? sql`` : sql`and user_id = ${userId}`
  let started = false
  let after: [string, string] | undefined
  for (;;) {
    const cursor = after === undefined ? sql`` : sql`and (day, user_id) > (${after[0]}::date, ${after[1]})`
    const rows = await withTenant(db, tenantId, async (trx) => (await sql<Row>`${SELECT}
      where ${OWN_TENANT} and day >= ${range.from}::date and day <= ${range.to}::date ${user} ${cursor}
      order by day, user_id limit ${PAGE_ROWS}`.execute(trx)).rows)
    // The header follows the first read, so a database that is down fails the request before anything is sent.
    if (!started) { started = true; if (head !== '') yield head }
    for (const row of rows) yield line(toRecord(row))
    if (rows.length < PAGE_ROWS) return
    const last = rows[rows.length - 1]!
    after = [last.day, last.user_id]
  }
}

/**
 * Every tenant's daily rows per user, for the platform (GET /admin/usage), by tenant, date and
 * user (the rollup's key order). Read as the app role with the usage_directory policy on, which
 * opens usage_daily to SELECT across tenants and nothing else; `tenantId` limits it to one tenant.
 */
export async function * platformUsageExport (db: AppDatabase, range: ExportRange, format: ExportFormat, tenantId?: string): AsyncGenerator<string> {
  const { head, line } = formatter(format, ADMIN_EXPORT_COLUMNS)
  const tenant = tenantId === undefined ? sql`` : sql`and tenant_id = ${tenantId}`
  let started = false
  let after: [string, string, string] | undefined
  for (;;) {
    const cursor = after === undefined ? sql`` : sql`and (tenant_id, day, user_id) > (${after[0]}, ${after[1]}::date, ${after[2]})`
    const rows = await withAppRole(db, async (trx) => (await sql<Row>`${SELECT}
      where day >= ${range.from}::date and day <= ${range.to}::date ${tenant} ${cursor}
      order by tenant_id, day, user_id limit ${PAGE_ROWS}`.execute(trx)).rows, { 'app.usage_directory': 'on' })
    // The header follows the first read, so a database that is down fails the request before anything is sent.
    if (!started) { started = true; if (head !== '') yield head }
    for (const row of rows) yield line(toRecord(row))
    if (rows.length < PAGE_ROWS) return
    const last = rows[rows.length - 1]!
    after = [last.tenant_id, last.day, last.user_id]
  }
}
