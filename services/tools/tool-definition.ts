import type { TSchema } from 'typebox'
import type { Trx } from '../db/with-tenant.ts'

/** A host tool scripts can call. `run` gets a transaction already scoped to the caller's tenant. */
export interface ToolDefinition {
  name: string
  description: string
  argsSchema: TSchema
  run: (trx: Trx, caller: { tenantId: string, userId: string }, args: unknown, config: Record<string, unknown>) => Promise<unknown>
}
