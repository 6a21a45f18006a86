import { Type } from 'typebox'

/** A tenant id, as a token's `tenantId` claim and the admin routes' `:tenantId` carry it. */
export const TENANT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'

export const TenantIdSchema = Type.String({ pattern: TENANT_ID_PATTERN })
