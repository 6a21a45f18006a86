import { sql, type Expression, type SqlBool, type ExpressionBuilder } from 'kysely'
import { Type, type Static, type TSchema } from 'typebox'
import type { Database } from '../db/schema.ts'
import type { TenantTrx } from '../db/with-tenant.ts'
import { ToolResultTooLargeError, type ToolCaller, type ToolDefinition, type ToolLimits } from './tool-definition.ts'

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

/**
 * Reads at most `limits.maxResultBytes` of documents. PostgreSQL measures each row first
 * (octet_length of the body as text, which is what the driver would receive: pg_column_size
 * would count compressed bytes, and a compressible body would slip through); only when the
 * whole page fits are the bodies read, so a result over the budget never enters this process.
 */
async function query (trx: TenantTrx, _caller: ToolCaller, args: Static<typeof QueryArgs>, config: Record<string, unknown>, limits: ToolLimits): Promise<StoredDocument[]> {
  const maxLimit = typeof config.maxLimit === 'number' && config.maxLimit > 0 ? config.maxLimit : 1000
  const limit = Math.min(args.limit ?? 100, maxLimit)
  const where = matches(args.collection ?? 'data', args.filter)
  // The page is chosen first, without bodies: measured in the same query, every matching row
  // would be sized before the sort and LIMIT picked the page.
  const page = trx.selectFrom('documents').select('id').where(where).orderBy('created_at').orderBy('id').limit(limit)
  const measured = await trx.selectFrom('documents')
    .select(['id', 'tenant_id', 'created_by', 'created_at', sql<number>`octet_length(body::text)`.as('bytes')])
    .where('id', 'in', page)
    .orderBy('created_at').orderBy('id')
    .execute()
  if (measured.length === 0) return []
  let total = 2 // []
  const budgetById: Record<string, number> = {}
  for (const row of measured) {
    const body = Number(row.bytes)
    // The system fields' JSON, plus a comma; the body's text form is never shorter than its JSON.
    total += body + Buffer.byteLength(JSON.stringify(toDocument({ ...row, body: {} }))) + 1
    if (total > limits.maxResultBytes) throw new ToolResultTooLargeError('data:query', limits.maxResultBytes)
    budgetById[row.id] = body
  }
  // A row that grew after it was measured (a concurrent update) comes back without its body.
  const rows = await trx.selectFrom('documents')
    .select(['id', 'tenant_id', 'created_by', 'created_at',
      sql<Record<string, unknown> | null>`case when octet_length(body::text) <= (${JSON.stringify(budgetById)}::jsonb ->> id::text)::int then body end`.as('body')])
    .where('id', 'in', Object.keys(budgetById))
    .orderBy('created_at').orderBy('id')
    .execute()
  return rows.map((row) => {
    if (row.body === null) throw new Error('a document grew while data:query was reading it')
    return toDocument({ ...row, body: row.body })
  })
}

async function insert (trx: TenantTrx, caller: ToolCaller, args: Static<typeof InsertArgs>): Promise<StoredDocument> {
  const row = await trx.insertInto('documents')
    .values({
      tenant_id: caller.tenantId,
      collection: args.collection ?? 'data',
      body: JSON.stringify(withoutSystemFields(args.document)),
      created_by: caller.userId
    })
    .returning(['id', 'tenant_id', 'body', 'created_by', 'created_at'])
    .executeTakeFirstOrThrow()
  return toDocument(row)
}

async function update (trx: TenantTrx, _caller: ToolCaller, args: Static<typeof UpdateArgs>): Promise<{ updated: number }> {
  const result = await trx.updateTable('documents')
    .set((eb) => ({ body: sql`${eb.ref('body')} || ${JSON.stringify(withoutSystemFields(args.set))}::jsonb` }))
    .where(matches(args.collection ?? 'data', args.filter))
    .executeTakeFirst()
  return { updated: Number(result.numUpdatedRows) }
}

async function remove (trx: TenantTrx, _caller: ToolCaller, args: Static<typeof DeleteArgs>): Promise<{ deleted: number }> {
  const result = await trx.deleteFrom('documents')
    .where(matches(args.collection ?? 'data', args.filter))
    .executeTakeFirst()
  return { deleted: Number(result.numDeletedRows) }
}

export const DATA_TOOLS: ToolDefinition[] = [
  { name: 'data:query', description: 'Find the tenant\'s documents whose body contains `filter`', argsSchema: QueryArgs, resultSchema: jsonSchema(QueryResult), run: query as ToolDefinition['run'] },
  { name: 'data:insert', description: 'Store a document; returns it with id, tenantId, createdBy and createdAt', argsSchema: InsertArgs, resultSchema: jsonSchema(StoredDocumentSchema), run: insert as ToolDefinition['run'] },
  { name: 'data:update', description: 'Merge `set` into every document matching `filter`; returns {updated}', argsSchema: UpdateArgs, resultSchema: jsonSchema(UpdateResult), run: update as ToolDefinition['run'] },
  { name: 'data:delete', description: 'Delete every document matching `filter`; returns {deleted}', argsSchema: DeleteArgs, resultSchema: jsonSchema(DeleteResult), run: remove as ToolDefinition['run'] }
]
