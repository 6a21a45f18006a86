// What a tenant keeps, bounded by its tier's storageBytes and storageDocuments. One counter row
// per tenant (tenant_storage, under RLS) moves in the same statement as the documents a data
// tool writes: an insert takes its room with a conditional upsert (the row lock orders
// concurrent inserts, and each sees the bytes the one before it added), so no number of
// concurrent calls passes the bound, and a refused insert writes nothing at all. A document's
// bytes are its body as PostgreSQL prints jsonb (octet_length(body::text)), the same measure the
// write bounds and the migration that counted the existing documents use.
import { sql } from 'kysely'
import type { TenantTrx } from '../db/with-tenant.ts'
import type { TenantQuotas } from '../tenants/tiers.ts'
import { ToolLimitError } from './tool-definition.ts'

/** A data tool refused because the tenant's storage would go past its tier's bound; nothing was written. */
export class StorageQuotaError extends ToolLimitError {
  override name = 'StorageQuotaError'
}

/** What the tenant keeps, and its bounds. */
export interface StorageUsage {
  bytes: number
  documents: number
  limitBytes: number
  limitDocuments: number
}

export type StorageLimits = Pick<TenantQuotas, 'storageBytes' | 'storageDocuments'>

interface InsertedRow { id: string, tenant_id: string, body: Record<string, unknown>, created_by: string, created_at: Date }

/**
 * Inserts one document if the tenant's storage has room for it (bytes and one document), in one
 * statement with the counter's upsert; throws StorageQuotaError (nothing written) if not.
 */
export async function insertCounted (trx: TenantTrx, owner: { tenantId: string, userId: string }, collection: string, body: string, limits: StorageLimits): Promise<InsertedRow> {
  const { storageBytes, storageDocuments } = limits
  const result = await sql<InsertedRow>`
    with sized as (select doc.body, octet_length(doc.body::text) as bytes from (select ${body}::jsonb as body) as doc),
    charged as (
      insert into tenant_storage as s (tenant_id, bytes, documents)
      select ${owner.tenantId}, bytes, 1 from sized where bytes <= ${storageBytes}::bigint and 1 <= ${storageDocuments}::bigint
      on conflict (tenant_id) do update set bytes = s.bytes + excluded.bytes, documents = s.documents + 1, updated_at = now()
        where s.bytes + excluded.bytes <= ${storageBytes}::bigint and s.documents + 1 <= ${storageDocuments}::bigint
      returning 1
    )
    insert into documents (tenant_id, collection, body, created_by)
    select ${owner.tenantId}, ${collection}, body, ${owner.userId} from sized where exists (select 1 from charged)
    returning id, tenant_id, body, created_by, created_at`.execute(trx)
  const row = result.rows[0]
  if (row !== undefined) return row
  const [usage, size] = await Promise.all([readStorage(trx, owner.tenantId, limits), sql<{ bytes: number | string }>`select octet_length(${body}::jsonb::text) as bytes`.execute(trx)])
  throw new StorageQuotaError(storageRefusal(`this document (${Number(size.rows[0]?.bytes ?? 0)} bytes) would take`, usage))
}

/** The message of a refused write: the code first (scripts match on it), then the numbers and what to do. */
export function storageRefusal (what: string, usage: StorageUsage): string {
  return `STORAGE_QUOTA_EXCEEDED: ${what} the tenant past its storage limit of ${usage.limitBytes} bytes and ${usage.limitDocuments} documents ` +
    `(${usage.bytes} bytes in ${usage.documents} documents are stored); nothing was written. Delete documents no longer needed (data:delete), or ask an admin for a larger tier`
}

/** The tenant's storage and its bounds; a tenant that never stored anything has no row and keeps 0. */
export async function readStorage (trx: TenantTrx, tenantId: string, limits: StorageLimits): Promise<StorageUsage> {
  const row = await trx.selectFrom('tenant_storage').select(['bytes', 'documents']).where('tenant_id', '=', tenantId).executeTakeFirst()
  return { bytes: Number(row?.bytes ?? 0), documents: Number(row?.documents ?? 0), limitBytes: limits.storageBytes, limitDocuments: limits.storageDocuments }
}
