import t from 'tap'
import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { createTenant, sharedApp, uniqueTenantId } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import type { ToolCallEntry } from '../../services/audit/audit-writer.ts'

function toolCall (tenantId: string, executionId: string, callIndex: number, code = 'OK'): ToolCallEntry {
  return { tenantId, executionId, callIndex, tool: 'data:query', code, durationMs: 1, argsSha256: 'a'.repeat(64), argsBytes: 2, resultBytes: 2, upstreamStatus: null, createdAt: new Date() }
}

// Each test reads, or writes rows of its own tenants: the file's tests share one app (sharedApp).
t.test('tool_calls is a tenant table: RLS forced, keyed by tenant, written once', async (t) => {
  const app = await sharedApp()
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

t.test('calls the sandbox refuses before any tool sees them are audited too, in order', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'tc-refused', { tier: 'starter', quotaOverrides: { maxToolCallsPerExecution: 5 } })
  const res = await tenant.execute(`
    const circular = {}
    circular.self = circular
    const calls = [[42, {}], ['bad name!', {}], ['data:query', { s: 'x'.repeat(1100000) }], ['data:query', circular], ['data:query', {}]]
    for (const [name, args] of calls) { try { await callTool(name, args) } catch {} }
    await callTool('data:query', {}) // the sixth: over the run's limit of 5
  `)
  const { executionId, success, error } = res.json()
  t.equal(success, false)
  t.equal(error.code, 'MAX_TOOL_CALLS')
  await app.audit.flush()
  const audit = await app.inject({ method: 'GET', url: `/api/audit/${executionId as string}`, headers: tenant.headers })
  t.equal(audit.statusCode, 200)
  const rows = audit.json().toolCalls as Array<Record<string, unknown>>
  t.same(rows.map((c) => [c.callIndex, c.tool, c.code]), [
    [0, '', 'TOOL_ERROR'], // the name is not a string
    [1, '"bad name!"', 'TOOL_NOT_FOUND'], // not a tool name: stored escaped
    [2, 'data:query', 'TOOL_ERROR'], // arguments over maxToolArgsBytes (1 MB)
    [3, 'data:query', 'TOOL_ERROR'], // arguments that are not JSON
    [4, 'data:query', 'OK'],
    [5, 'data:query', 'MAX_TOOL_CALLS']
  ])
  t.ok((rows[2]?.argsBytes as number) > 1_000_000, `the refused arguments' size is kept: ${String(rows[2]?.argsBytes)}`)
  t.match(rows[0], { argsBytes: 0, argsSha256: createHash('sha256').digest('hex'), resultBytes: null })
})
