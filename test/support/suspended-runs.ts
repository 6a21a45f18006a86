// A run as the worker leaves it when its first start suspends, without an isolate: accepted,
// marked running, then the worker's own suspension step (suspendRun) with the journal of a start
// that stopped at two gated inserts after one query. For the tests of what a waiting run holds
// (its place, its record, its storage); the replay inside a start has its own tests.
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { TestTenant } from '../helper.ts'
import type { ExecutionJob } from '../../services/executions/execution-queue.ts'
import type { QueuedExecutionsDeps } from '../../services/executions/queued-executions.ts'
import type { RunJournal } from '../../services/executions/approvals/run-journal.ts'
import { expireIfDue, suspendRun, type Suspended } from '../../services/executions/approvals/waiting-runs.ts'
import { depsOf } from './approvals.ts'

/** What a first start that stopped at two gated inserts (after one query) leaves. */
export const twoGatedJournal = (): RunJournal => ({
  version: 1,
  calls: [
    { position: 0, callId: 'call-0', tool: 'data:query', argsJson: '{}', outcome: { ok: true, value: [] } },
    { position: 1, callId: 'call-1', tool: 'data:insert', argsJson: '{"document":{"n":1}}' },
    { position: 2, callId: 'call-2', tool: 'data:insert', argsJson: '{"document":{"n":2}}' }
  ],
  drawn: [],
  logLines: 0,
  grants: [],
  starts: 1
})

export interface SuspendOptions {
  code?: string
  /** The deps the suspension step takes (another store, for fake time): the app's by default. */
  deps?: QueuedExecutionsDeps
  /** false: the record is not running when the start suspends (another party moved it). */
  running?: boolean
}

/** Suspends a new run of `tenant`: its id, and what became of it ('waiting', or why it could not wait). */
export async function suspendedRun (app: FastifyInstance, tenant: TestTenant, options: SuspendOptions = {}): Promise<{ executionId: string, waits: Suspended }> {
  const deps = options.deps ?? depsOf(app)
  const executionId = randomUUID()
  const job: ExecutionJob = { executionId, tenantId: tenant.tenantId, userId: 'runner', permissions: ['tool:data:insert', 'tool:data:query'], code: options.code ?? 'return 7', timeoutMs: 5000 }
  await deps.records.accept({ executionId, tenantId: tenant.tenantId, userId: 'runner', status: 'queued', submittedAt: new Date().toISOString(), codeSha256: 'x', timeoutMs: 5000 })
  await deps.events.append(executionId, 'queued', {}, tenant.tenantId)
  if (options.running !== false) await deps.records.move(executionId, ['queued'], { status: 'running', startedAt: new Date().toISOString() })
  const held = [1, 2].map((position) => ({ type: 'approval_required' as const, data: { callId: `call-${position}`, tool: 'data:insert', args: { document: { n: position } }, position } }))
  return { executionId, waits: await suspendRun(deps, job, twoGatedJournal(), held) }
}

/** A run of `tenant` waiting for approval (throws if it could not wait). */
export async function waitingRun (app: FastifyInstance, tenant: TestTenant, options: SuspendOptions = {}): Promise<string> {
  const { executionId, waits } = await suspendedRun(app, tenant, options)
  if (waits !== 'waiting') throw new Error(`the run did not wait: ${JSON.stringify(waits)}`)
  return executionId
}

/**
 * The sweep's step for one waiting run, as if its expiry had passed: the run's own, not a sweep
 * over every due run, which on a Redis shared by test files at once may reach other files' runs
 * first (a sweep takes a batch) or expire them.
 */
export async function expireNow (app: FastifyInstance, executionId: string): Promise<void> {
  const deps = depsOf(app)
  const record = await deps.records.get(executionId)
  if (record === undefined || !await expireIfDue(deps, record, Date.parse(record.expiresAt ?? '') + 1000)) throw new Error(`${executionId} did not expire`)
}
