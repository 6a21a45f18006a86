// The audit queue is bounded and shared by every tenant: when it is full (PostgreSQL away for a
// while), the tenant holding the most rows loses its oldest, so one tenant's burst cannot push
// another tenant's rows out.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { AuditWriter, type AuditEntry, type ToolCallEntry } from '../../services/audit/audit-writer.ts'
import { withTenant } from '../../services/db/with-tenant.ts'

t.test('a full queue drops the busiest tenant\'s oldest rows, not another tenant\'s', async (t) => {
  const app = await buildApp(t)
  const busy = await createTenant(app, 'audit-share-busy')
  const quiet = await createTenant(app, 'audit-share-quiet')
  const lost: number[] = []
  // Nothing is written until flush(): the queue fills as it would while the database is away.
  const writer = new AuditWriter(app.db, app.log, { maxQueued: 10, retryDelayMs: 10, batchDelayMs: 60_000, onLost: (count) => { lost.push(count) } })
  t.teardown(() => { writer.close() })
  const run = (tenantId: string, executionId: string): AuditEntry => ({ tenantId, executionId, userId: 'u', action: 'code_execution', codeSha256: null, success: true, errorCode: null, durationMs: 1, toolCalls: 0, createdAt: new Date() })
  const call = (tenantId: string, executionId: string, callIndex: number): ToolCallEntry => ({ tenantId, executionId, callIndex, tool: 'data:query', code: 'OK', durationMs: 1, argsSha256: 'a', argsBytes: 2, resultBytes: 2, upstreamStatus: null, createdAt: new Date() })

  writer.enqueue(run(quiet.tenantId, 'quiet-1'))
  writer.enqueue(run(busy.tenantId, 'busy-run'))
  for (let i = 1; i <= 12; i++) writer.enqueueToolCall(call(busy.tenantId, 'busy-run', i))
  writer.enqueue(run(quiet.tenantId, 'quiet-2'))
  t.equal(writer.pending, 10)
  t.same(lost, [1, 1, 1, 1, 1], 'five rows dropped, one at each push past the bound')
  await writer.flush()

  const quietRuns = await withTenant(app.db, quiet.tenantId, async (trx) => await trx.selectFrom('audit_log').select('execution_id').orderBy('execution_id').execute())
  t.same(quietRuns.map((r) => r.execution_id), ['quiet-1', 'quiet-2'], 'the quiet tenant lost nothing, though its first row was the oldest')
  const busyRuns = await withTenant(app.db, busy.tenantId, async (trx) => await trx.selectFrom('audit_log').select('execution_id').execute())
  t.same(busyRuns, [], 'the busy tenant\'s oldest row (its run) went first')
  const busyCalls = await withTenant(app.db, busy.tenantId, async (trx) => await trx.selectFrom('tool_calls').select('call_index').orderBy('call_index').execute())
  t.same(busyCalls.map((r) => r.call_index), [5, 6, 7, 8, 9, 10, 11, 12], 'then its oldest calls: the newest eight are kept')
})
