import { sql, type CompiledQuery, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely'
import { Type, type Static, type TSchema } from 'typebox'
import type { Database } from '../db/schema.ts'
import { statementAsTenant, type AppDatabase, type TenantTrx } from '../db/with-tenant.ts'
import type { RunBounds } from '../db/run-bounds.ts'
import { TIER_WRITE_LIMITS } from '../tenants/tiers.ts'
import { ToolResultTooLargeError, ToolWriteLimitError, type ToolCaller, type ToolDefinition, type ToolLimits } from './tool-definition.ts'
import { insertCounted, readStorage, StorageQuotaError, storageRefusal } from './document-storage.ts'

// Fields the service owns: a document can neither set nor fake them.
const SYSTEM_FIELDS = new Set(['id', 'tenantId', 'createdBy', 'createdAt'])

const Collection = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', default: 'data', description: 'Collection name (default "data")' })
const JsonObject = Type.Record(Type.String(), Type.Unknown())
const Filter = Type.Record(Type.String(), Type.Unknown(), { description: 'Matches documents whose body contains this object (JSONB @>); `id` and `createdBy` match those fields' })

export const QueryArgs = Type.Object({
  collection: Type.Optional(Collection),
  filter: Type.Optional(Filter),
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Default 100, capped by the tool config maxLimit (default 1000)' }))
}, { additionalProperties: false })
export const InsertArgs = Type.Object({
  collection: Type.Optional(Collection),
  document: JsonObject
}, { additionalProperties: false })
export const UpdateArgs = Type.Object({
  collection: Type.Optional(Collection),
  filter: Filter,
  set: JsonObject
}, { additionalProperties: false })
export const DeleteArgs = Type.Object({
  collection: Type.Optional(Collection),
  filter: Filter
}, { additionalProperties: false })

/** A TypeBox schema as the plain JSON Schema object ToolDefinition.resultSchema holds. */
const jsonSchema = (schema: TSchema): Record<string, unknown> => schema as unknown as Record<string, unknown>

// What the tools answer, for the declarations scripts are typed against (/api/tools.d.ts).
const StoredDocumentSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  tenantId: Type.String(),
  createdBy: Type.String({ description: 'userId of the token that inserted it' }),
  createdAt: Type.String({ format: 'date-time' })
}, { additionalProperties: Type.Unknown(), description: 'A stored document: its body\'s fields plus the fields the service owns' })
export const QueryResult = Type.Array(StoredDocumentSchema)
export const UpdateResult = Type.Object({ updated: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })
export const DeleteResult = Type.Object({ deleted: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })

export interface StoredDocument extends Record<string, unknown> {
  id: string
  tenantId: string
  createdBy: string
  createdAt: string
}

function withoutSystemFields (body: Record<string, unknown>): Record<string, unknown> {
  const clean: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(body)) {
    if (!SYSTEM_FIELDS.has(key)) clean[key] = value
  }
  return clean
}

function toDocument (row: { id: string, tenant_id: string, body: Record<string, unknown>, created_by: string, created_at: Date }): StoredDocument {
  return { ...row.body, id: row.id, tenantId: row.tenant_id, createdBy: row.created_by, createdAt: new Date(row.created_at).toISOString() }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The WHERE clause of a filter. RLS adds the tenant on top, whatever the filter says. */
function matches (collection: string, filter: Record<string, unknown> = {}) {
  return (eb: ExpressionBuilder<Database, 'documents'>): Expression<SqlBool> => {
    const conditions: Array<Expression<SqlBool>> = [eb('collection', '=', collection)]
    const { id, createdBy, tenantId, createdAt, ...body } = filter
    if (id !== undefined) {
      // A malformed id matches nothing rather than failing the cast.
      conditions.push(typeof id === 'string' && UUID.test(id) ? eb('id', '=', id) : sql<SqlBool>`false`)
    }
    if (createdBy !== undefined) conditions.push(eb('created_by', '=', String(createdBy)))
    if (tenantId !== undefined) conditions.push(eb('tenant_id', '=', String(tenantId)))
    if (createdAt !== undefined) conditions.push(sql<SqlBool>`false`)
    if (Object.keys(body).length > 0) conditions.push(sql<SqlBool>`${eb.ref('body')} @> ${JSON.stringify(body)}::jsonb`)
    return eb.and(conditions)
  }
}

// What one document adds to a result besides its body's text: its system fields' JSON with the
// two strings below empty (to_json of each, quotes included, is added per row in SQL), and a comma.
const SYSTEM_FIELDS_BYTES = Buffer.byteLength(JSON.stringify(toDocument({ id: '00000000-0000-0000-0000-000000000000', tenant_id: '', created_by: '', created_at: new Date(0), body: {} }))) - 4 + 1

/** A row of data:query's statement: the body only when the whole page fits; `total` is the page's JSON bytes (bigint). */
interface MeasuredDocument { id: string, tenant_id: string, created_by: string, created_at: Date, body: Record<string, unknown> | null, total: number | string }

/**
 * Reads at most `limits.maxResultBytes` of documents, in one statement that is sent with the
 * tenant's settings in one round trip (statementAsTenant). PostgreSQL chooses the page, measures each
 * row (octet_length of the body as text, which is what the driver would receive: pg_column_size
 * would count compressed bytes, and a compressible body would slip through; plus the system
 * fields' JSON, escaped by to_json as JSON.stringify escapes them) and returns the bodies only
 * when the whole page fits, so a result over the budget never enters this process. One statement
 * sees one snapshot: no row can grow between its measure and its read.
 */
async function query (db: AppDatabase, caller: ToolCaller, args: Static<typeof QueryArgs>, config: Record<string, unknown>, limits: ToolLimits, bounds?: RunBounds): Promise<StoredDocument[]> {
  const rows = await statementAsTenant(db, caller.tenantId, dataQueryStatement(db.kysely, args, config, limits), bounds)
  if (rows.length > 0 && Number(rows[0]?.total) > limits.maxResultBytes) throw new ToolResultTooLargeError('data:query', limits.maxResultBytes)
  return rows.map((row) => {
    if (row.body === null) throw new Error('data:query read a document without its body')
    return toDocument({ ...row, body: row.body })
  })
}

/** data:query's statement (also run by `npm run bench:tool-path` straight from pg). */
export function dataQueryStatement (kysely: Kysely<Database>, args: Static<typeof QueryArgs>, config: Record<string, unknown>, limits: ToolLimits): CompiledQuery<MeasuredDocument> {
  const maxLimit = typeof config.maxLimit === 'number' && config.maxLimit >= 1 ? Math.floor(config.maxLimit) : 1000
  const limit = Math.min(args.limit ?? 100, maxLimit)
  // The page is chosen with its bodies untouched (a LIMIT subquery is never merged into the query
  // around it); only then is each of its rows measured. Measured in the same SELECT as the ORDER
  // BY, every matching row could be sized before the LIMIT picked the page.
  const page = kysely.selectFrom('documents')
    .select(['id', 'tenant_id', 'created_by', 'created_at', 'body'])
    .where(matches(args.collection ?? 'data', args.filter))
    .orderBy('created_at').orderBy('id').limit(limit)
  // Each row's size is computed once, in a subquery kept apart by OFFSET 0 (PostgreSQL's fence
  // against merging it into the window above, which would evaluate it again: with 100 large
  // bodies that cost 2.3 times the old two SELECTs). A window sum over the page, not a CTE:
  // PostgreSQL plans it in about half the time.
  return sql<MeasuredDocument>`
    select id, tenant_id, created_by, created_at, case when total <= ${limits.maxResultBytes} then body end as body, total
    from (
      select sized.*, 2 + sum(bytes) over () as total
      from (
        select page.*, octet_length(body::text) + octet_length(to_json(tenant_id)::text) + octet_length(to_json(created_by)::text) + ${SYSTEM_FIELDS_BYTES} as bytes
        from (${page}) as page offset 0
      ) as sized
    ) as measured
    order by created_at, id`.compile(kysely)
}

/** Stores the document if the tenant's storage has room for it (document-storage.ts), else writes nothing. */
async function insert (trx: TenantTrx, caller: ToolCaller, args: Static<typeof InsertArgs>): Promise<StoredDocument> {
  return toDocument(await insertCounted(trx, caller, args.collection ?? 'data', JSON.stringify(withoutSystemFields(args.document)), caller.quotas))
}

/** What a bounded write's one statement answers: the targets it saw (at most the bound + 1), their bytes, the bytes stored grew by, and the rows it wrote. */
interface WriteOutcome { targets: number | string, bytes: number | string, grown: number | string, written: number | string }

/**
 * Runs data:update or data:delete as one statement that first counts, sizes and locks its
 * targets (at most the tier's row bound + 1 of them) and writes only when both bounds hold, so
 * a call over them writes nothing at all, not even its first rows, and no row is read twice.
 * The targets are locked (FOR UPDATE), so the rows measured are the rows written, in the
 * version written, even when another call changed or deleted them meanwhile.
 *
 * The same statement moves the tenant's storage counter by what the write adds or frees (never
 * below 0): a delete frees its documents' bytes, an update adds or frees the difference, and an
 * update that would take the tenant past its storage bound writes nothing (STORAGE_QUOTA_EXCEEDED).
 */
async function boundedWrite (trx: TenantTrx, caller: ToolCaller, tool: 'data:update' | 'data:delete', args: { collection?: string, filter: Record<string, unknown> }, set?: string): Promise<number> {
  const limits = TIER_WRITE_LIMITS[caller.tier ?? 'free']
  const body = sql.ref('body')
  const written = set === undefined ? body : sql`${body} || ${set}::jsonb`
  const targets = trx.selectFrom('documents')
    .select(['id', sql<number>`octet_length(body::text)`.as('old_bytes'), sql<number>`octet_length((${written})::text)`.as('bytes')])
    .where(matches(args.collection ?? 'data', args.filter))
    .limit(limits.maxRowsWrittenPerCall + 1)
    .forUpdate()
  // A delete frees what it removes; an update grows (or shrinks) by the difference.
  const totals = set === undefined
    ? sql`select count(*) as n, coalesce(sum(bytes), 0) as bytes, -coalesce(sum(old_bytes), 0) as grown, -count(*) as docs from targets`
    : sql`select count(*) as n, coalesce(sum(bytes), 0) as bytes, coalesce(sum(bytes) - sum(old_bytes), 0) as grown, 0 as docs from targets`
  const { storageBytes } = caller.quotas
  const within = sql`totals.n > 0 and totals.n <= ${limits.maxRowsWrittenPerCall} and totals.bytes <= ${limits.maxBytesWrittenPerCall}`
  const charged = sql`insert into tenant_storage as s (tenant_id, bytes, documents)
    select ${caller.tenantId}, greatest(0, totals.grown), 0 from totals where ${within} and totals.grown <= ${storageBytes}::bigint
    on conflict (tenant_id) do update
      set bytes = greatest(0, s.bytes + (select grown from totals)), documents = greatest(0, s.documents + (select docs from totals)), updated_at = now()
      where (select grown from totals) <= 0 or s.bytes + (select grown from totals) <= ${storageBytes}::bigint
    returning 1`
  const write = set === undefined
    ? sql`delete from documents where id in (select id from targets) and exists (select 1 from charged) returning 1`
    : sql`update documents set body = ${written} where id in (select id from targets) and exists (select 1 from charged) returning 1`
  const result = await sql<WriteOutcome>`with targets as (${targets}), totals as (${totals}), charged as (${charged}), written as (${write})
    select totals.n as targets, totals.bytes, totals.grown, (select count(*) from written) as written from totals`.execute(trx)
  const outcome = result.rows[0]
  if (outcome === undefined) throw new Error(`${tool} answered no outcome`)
  const count = Number(outcome.targets)
  const bytes = Number(outcome.bytes)
  if (count > limits.maxRowsWrittenPerCall || bytes > limits.maxBytesWrittenPerCall) {
    const what = count > limits.maxRowsWrittenPerCall ? `matches more than ${limits.maxRowsWrittenPerCall} documents` : `would write ${bytes} bytes`
    throw new ToolWriteLimitError(`${tool} ${what}: over the ${caller.tier ?? 'free'} tier's limit of ${limits.maxRowsWrittenPerCall} documents and ${limits.maxBytesWrittenPerCall} bytes written per call; nothing was written, narrow the filter`)
  }
  const grown = Number(outcome.grown)
  if (count > 0 && Number(outcome.written) === 0 && grown > 0) {
    throw new StorageQuotaError(storageRefusal(`this update (${grown} bytes more) would take`, await readStorage(trx, caller.tenantId, caller.quotas)))
  }
  return Number(outcome.written)
}

async function update (trx: TenantTrx, caller: ToolCaller, args: Static<typeof UpdateArgs>): Promise<{ updated: number }> {
  return { updated: await boundedWrite(trx, caller, 'data:update', args, JSON.stringify(withoutSystemFields(args.set))) }
}

async function remove (trx: TenantTrx, caller: ToolCaller, args: Static<typeof DeleteArgs>): Promise<{ deleted: number }> {
  return { deleted: await boundedWrite(trx, caller, 'data:delete', args) }
}

export const DATA_TOOLS: ToolDefinition[] = [
  { name: 'data:query', description: 'Find the tenant\'s documents whose body contains `filter`', argsSchema: QueryArgs, resultSchema: jsonSchema(QueryResult), runAsTenant: query as ToolDefinition['runAsTenant'] },
  { name: 'data:insert', description: 'Store a document; returns it with id, tenantId, createdBy and createdAt', argsSchema: InsertArgs, resultSchema: jsonSchema(StoredDocumentSchema), run: insert as ToolDefinition['run'] },
  { name: 'data:update', description: 'Merge `set` into every document matching `filter`; returns {updated}', argsSchema: UpdateArgs, resultSchema: jsonSchema(UpdateResult), run: update as ToolDefinition['run'] },
  { name: 'data:delete', description: 'Delete every document matching `filter`; returns {deleted}', argsSchema: DeleteArgs, resultSchema: jsonSchema(DeleteResult), run: remove as ToolDefinition['run'] }
]
