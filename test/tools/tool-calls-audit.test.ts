import t from 'tap'
import { sql } from 'kysely'
import { buildApp, uniqueTenantId } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import type { ToolCallEntry } from '../../services/audit/audit-writer.ts'

function toolCall (tenantId: string, executionId: string, callIndex: number, code = 'OK'): ToolCallEntry {
  return { tenantId, executionId, callIndex, tool: 'data:query', code, durationMs: 1, argsSha256: 'a'.repeat(64), argsBytes: 2, resultBytes: 2, upstreamStatus: null, createdAt: new Date() }
}

t.test('tool_calls is a tenant table: RLS forced, keyed by tenant, written once', async (t) => {
  const app = await buildApp(t)
  const a = uniqueTenantId('tc-a')
  const b = uniqueTenantId('tc-b')
  app.audit.enqueueToolCall(toolCall(a, 'run-1', 0))
  app.audit.enqueueToolCall(toolCall(b, 'run-1', 0, 'TOOL_ERROR'))
  // A retried batch writes the same call again: it stays one row.
  app.audit.enqueueToolCall(toolCall(a, 'run-1', 0, 'TOOL_ERROR'))
  await app.audit.flush()

  const rowsOf = async (tenantId: string) => await withTenant(app.db, tenantId, async (trx) => await trx.selectFrom('tool_calls').select(['tenant_id', 'execution_id', 'call_index', 'code']).execute())
  t.same(await rowsOf(a), [{ tenant_id: a, execution_id: 'run-1', call_index: 0, code: 'OK' }], 'A sees its one row, the first write')
  t.same(await rowsOf(b), [{ tenant_id: b, execution_id: 'run-1', call_index: 0, code: 'TOOL_ERROR' }], 'B sees only its own')
  t.same(await rowsOf(''), [], 'no tenant set: nothing')
  await t.rejects(withTenant(app.db, a, async (trx) => await trx.insertInto('tool_calls').values({ ...{ tenant_id: b, execution_id: 'x', call_index: 0, tool: 't', code: 'OK', duration_ms: 0, args_sha256: '', args_bytes: 0 } }).execute()), /row-level security/)
  const key = await withTenant(app.db, a, async (trx) => await sql<{ def: string }>`
    select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'tool_calls'::regclass and contype = 'p'`.execute(trx))
  t.equal(key.rows[0]?.def, 'PRIMARY KEY (tenant_id, execution_id, call_index)', 'tenant_id leads the key')
})
