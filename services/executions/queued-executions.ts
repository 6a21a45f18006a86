// Queued executions: submission (idempotency, queue bound, daily quota), the worker's side of a
// run (slot, events, result), cancellation from any instance, lost runs, and retention.
import type { AppDatabase } from '../db/with-tenant.ts'
import { withTenant } from '../db/with-tenant.ts'
import type { ExecutionRow, ExecutionStatus } from '../db/schema.ts'
import { cancelledError, enclaveError } from '../enclave/errors.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import { executeScript, sha256, type ExecutionDeps, type ExecutionEvent } from './execute-script.ts'
import { acquireRunSlot, admitSubmission, type QueueFullRefusal, type Refusal, type SubmissionAdmission } from '../quotas/admission.ts'
import type { FastifyBaseLogger } from 'fastify'
import type { LimitStore } from '../store/index.ts'
import type { TenantQuotas } from '../tenants/tiers.ts'
import type { EventLog } from './event-log.ts'
import { codeSizeRefusalOf, newExecutionId, runTimeoutMs, type ExecutionRequestBody } from './execution-request.ts'
import type { ExecutionFacts } from './execution-hooks.ts'
import type { ExecutionJob, ExecutionQueue, JobOutcome } from './execution-queue.ts'
import {
  deleteExecution, FINISHED, finishExecution, finishExecutionAsTenant, getExecution, hasExecutions, insertExecution, listExecutions, markRunning,
  pruneExecutions, statusOf
} from './execution-repository.ts'

export const CANCEL_CHANNEL = 'tenant-enclave:executions:cancel'
/** Queued runs a tenant may have, per concurrent run its tier allows. */
export const QUEUE_FACTOR = 10
/** A queued run's place in its tenant's queue bound expires after this, should its instance die. */
const QUEUED_LEASE_MS = 60 * 60_000
// A run waiting for its tenant's slot is retried after these delays (doubling): no hot loop.
const SLOT_RETRY_MIN_MS = 25
const SLOT_RETRY_MAX_MS = 500
const SLOT_FREE_WAIT_MS = 1000
const RESUBSCRIBE_MS = 200
const SUBSCRIBE_WAIT_MS = 5000
// A finished run's row is written again after these delays when PostgreSQL refused it.
const FINISH_RETRY_MS = [100, 500, 2000, 5000]

export type SubmitRefusal = Refusal | QueueFullRefusal

export interface Submitter {
  tenantId: string
  userId: string
  permissions: string[]
  quotas: TenantQuotas
}

export interface ExecutionView {
  executionId: string
  status: ExecutionStatus
  submittedAt: string
  startedAt?: string
  finishedAt?: string
  result?: ExecutionResult
}

/** Tenants that have executions, so retention can prune them one tenant (one RLS scope) at a time. */
export interface TenantIndex {
  add (tenantId: string): Promise<void>
  list (): Promise<string[]>
  remove (tenantId: string): Promise<void>
}

/**
 * Cancels asked for running runs, kept where every instance can read them. The pub/sub notice
 * is the fast path; a notice lost while the running instance's subscription was reconnecting is
 * found here once it is back (Executions re-checks its runs then).
 */
export interface CancelRequests {
  record (executionId: string): Promise<void>
  /** Those of `executionIds` that have a recorded cancel. */
  pending (executionIds: string[]): Promise<string[]>
}

export interface ExecutionsDeps {
  execution: ExecutionDeps
  db: AppDatabase
  store: LimitStore
  queue: ExecutionQueue
  events: EventLog
  tenantIndex: TenantIndex
  cancels: CancelRequests
  quotasOf: (tenantId: string) => Promise<TenantQuotas>
  log: FastifyBaseLogger
}

const queuedKey = (tenantId: string): string => `executions:queued:${tenantId}`
const iso = (d: Date | string | null): string | undefined => d === null ? undefined : new Date(d).toISOString()

export function toView (row: ExecutionRow): ExecutionView {
  const view: ExecutionView = { executionId: row.execution_id, status: row.status, submittedAt: iso(row.submitted_at)! }
  if (row.started_at !== null) view.startedAt = iso(row.started_at)
  if (row.finished_at !== null) view.finishedAt = iso(row.finished_at)
  if (row.result !== null) view.result = (typeof row.result === 'string' ? JSON.parse(row.result) : row.result) as ExecutionResult
  return view
}

export class Executions {
  private readonly deps: ExecutionsDeps
  /** Runs this instance is running, by id: a cancel aborts the controller. */
  private readonly running = new Map<string, AbortController>()
  private readonly slotWaits = new Map<string, number>()
  private stopped = false
  private resubscribe: NodeJS.Timeout | undefined
  private recheck: NodeJS.Timeout | undefined

  constructor (deps: ExecutionsDeps) {
    this.deps = deps
  }

  /** Subscribes to cancels from every instance; with `work`, takes queued runs too. */
  async start (options: { work: boolean, concurrency: number }): Promise<void> {
    // A cancel sent before this instance listens would be lost: start waits (a while) until the
    // subscription holds, and keeps trying in the background if Redis is not there yet.
    let subscribed: () => void = () => {}
    const ready = new Promise<void>((resolve) => { subscribed = resolve })
    const subscribe = async (): Promise<void> => {
      try {
        await this.deps.store.subscribe(CANCEL_CHANNEL, (executionId) => { this.running.get(executionId)?.abort() }, () => { void this.recheckCancels() })
        subscribed()
      } catch (err) {
        if (this.stopped) return
        this.deps.log.warn({ err }, 'cannot subscribe to execution cancels yet; retrying')
        this.resubscribe = setTimeout(() => { void subscribe() }, RESUBSCRIBE_MS)
        this.resubscribe.unref()
      }
    }
    void subscribe()
    let gaveUp: NodeJS.Timeout | undefined
    await Promise.race([ready, new Promise((resolve) => { gaveUp = setTimeout(resolve, SUBSCRIBE_WAIT_MS) })])
    clearTimeout(gaveUp)
    if (options.work) this.deps.queue.work(async (job) => await this.runJob(job), options.concurrency, async (job) => { await this.onLost(job) })
  }

  get runningHere (): number { return this.running.size }

  stop (): void {
    this.stopped = true
    clearTimeout(this.resubscribe)
    clearTimeout(this.recheck)
  }

  async submit (caller: Submitter, body: ExecutionRequestBody, idempotencyKey: string | undefined):
  Promise<{ accepted: true, executionId: string, status: ExecutionStatus, created: boolean } | { accepted: false, refusal: SubmitRefusal }> {
    const { quotas, tenantId } = caller
    const codeSha256 = sha256(body.code)
    const executionId = newExecutionId()
    const refuse = (refusal: SubmitRefusal): { accepted: false, refusal: SubmitRefusal } => {
      this.deps.execution.hooks.refused({ tenantId, executionId, userId: caller.userId, codeSha256 }, refusal)
      return { accepted: false, refusal }
    }
    const tooLarge = codeSizeRefusalOf(body.code, quotas)
    if (tooLarge !== undefined) return refuse(tooLarge)
    const timeoutMs = runTimeoutMs(body.timeoutMs, quotas)

    const row = { tenantId, executionId, userId: caller.userId, timeoutMs, codeSha256, idempotencyKey }
    const queue = { key: queuedKey(tenantId), bound: QUEUE_FACTOR * quotas.maxConcurrentExecutions, leaseMs: QUEUED_LEASE_MS }
    const undo = async (): Promise<void> => { await withTenant(this.deps.db, tenantId, async (trx) => { await deleteExecution(trx, executionId) }) }
    let admission: SubmissionAdmission
    if (idempotencyKey === undefined) {
      // No key, so no earlier submission to find: the row and the admission go side by side (one
      // round trip less), and whichever fails undoes the other.
      const [inserted, admitted] = await Promise.allSettled([insertExecution(this.deps.db, row), admitSubmission(this.deps.store, tenantId, executionId, quotas, queue)])
      if (inserted.status === 'rejected') {
        if (admitted.status === 'fulfilled' && admitted.value.admitted) await admitted.value.withdraw().catch(() => {})
        throw inserted.reason
      }
      if (admitted.status === 'rejected') {
        await undo().catch(() => {})
        throw admitted.reason
      }
      admission = admitted.value
    } else {
      // A key: the row first, so a repeat finds the first execution and takes no quota.
      const inserted = await insertExecution(this.deps.db, row)
      if (!inserted.created) return { accepted: true, executionId: inserted.row.execution_id, status: inserted.row.status, created: false }
      try {
        admission = await admitSubmission(this.deps.store, tenantId, executionId, quotas, queue)
      } catch (err) {
        await undo().catch(() => {})
        throw err
      }
    }
    if (!admission.admitted) {
      await undo()
      return refuse(admission.refusal)
    }
    // `queued` and the job go together: the event log makes `queued` seq 1 whichever lands first.
    // A job the queue did not take was never accepted: the row and the quota go back (the client
    // gets 503), and the stream's lone `queued` expires unread.
    const job: ExecutionJob = { executionId, tenantId, userId: caller.userId, permissions: caller.permissions, code: body.code, timeoutMs, ...(body.language !== undefined ? { language: body.language } : {}) }
    const [, , added] = await Promise.allSettled([
      this.deps.events.append(executionId, 'queued', {}, tenantId),
      this.deps.tenantIndex.add(tenantId),
      this.deps.queue.add(job)
    ])
    if (added.status === 'rejected') {
      await Promise.all([undo(), admission.withdraw()]).catch(() => {})
      throw added.reason
    }
    return { accepted: true, executionId, status: 'queued', created: true }
  }

  async get (tenantId: string, executionId: string): Promise<ExecutionView | undefined> {
    const row = await withTenant(this.deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
    if (row === undefined) return undefined
    return await this.withFinal(row)
  }

  /**
   * A row as the API shows it. A run's `final` goes out before its row is written (runJob), so a
   * row that still says queued or running is read with its `final`, if it has one: whoever saw
   * the final finds the result, by id and in the list alike.
   */
  private async withFinal (row: ExecutionRow): Promise<ExecutionView> {
    const view = toView(row)
    if (FINISHED.has(row.status)) return view
    const final = await this.finalOf(row.execution_id)
    return final === undefined ? view : { ...view, status: statusOf(final.result), finishedAt: final.at, result: final.result }
  }

  /** The result the run's `final` event carries, if it has one; undefined also when Redis cannot say. */
  private async finalOf (executionId: string): Promise<{ result: ExecutionResult, at: string } | undefined> {
    const event = await this.deps.events.finalOf(executionId).catch(() => undefined)
    return event === undefined ? undefined : { result: event.data.result as ExecutionResult, at: event.at }
  }

  async list (tenantId: string, options: { status?: ExecutionStatus, limit: number, before?: string }): Promise<{ executions: ExecutionView[], nextBefore: string | null }> {
    const rows = await withTenant(this.deps.db, tenantId, async (trx) => await listExecutions(trx, options))
    // Unfinished rows are few (a tenant's slots and queue bound), so their finals are looked up
    // one by one. A row asked for as queued or running whose final is out has ended: it leaves
    // the page (which may then be short; nextBefore still says whether more rows follow). A
    // status filter for an end finds such a run once its row is written, a moment later.
    const views = await Promise.all(rows.map(async (row) => await this.withFinal(row)))
    const executions = options.status === undefined ? views : views.filter((view) => view.status === options.status)
    return { executions, nextBefore: rows.length === options.limit ? rows.at(-1)!.execution_id : null }
  }

  /** DELETE: 'accepted' once the run is ending (or ended, if it was queued). */
  async cancel (tenantId: string, userId: string, executionId: string): Promise<'accepted' | 'finished' | 'not-found'> {
    const row = await withTenant(this.deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
    if (row === undefined) return 'not-found'
    if (FINISHED.has(row.status)) return 'finished'
    if (row.status === 'queued') {
      const result: ExecutionResult = { executionId, success: false, error: cancelledError(), logs: [], stats: { duration: 0, toolCallCount: 0 } }
      const won = await withTenant(this.deps.db, tenantId, async (trx) => await finishExecution(trx, executionId, result, ['queued']))
      if (won) {
        await this.deps.queue.remove(executionId)
        await this.deps.store.releaseLease(queuedKey(tenantId), executionId).catch(() => {})
        this.deps.execution.hooks.ended({ tenantId, executionId, userId, codeSha256: row.code_sha256 }, result)
        await this.deps.events.append(executionId, 'final', { result })
        return 'accepted'
      }
      // It started meanwhile: cancel it where it runs.
    }
    if (await this.finalOf(executionId) !== undefined) return 'finished'
    const here = this.running.get(executionId)
    if (here !== undefined) { here.abort(); return 'accepted' }
    // Elsewhere: recorded, then announced. The instance running it hears the notice, or, if its
    // subscription was reconnecting, finds the record when it is back (recheckCancels). Redis
    // unreachable: either step throws and the caller gets 503, never a 202 that does nothing.
    await this.deps.cancels.record(executionId)
    await this.deps.store.publish(CANCEL_CHANNEL, executionId)
    return 'accepted'
  }

  /** After a reconnect: cancels recorded for runs here while their notices could not arrive. */
  private async recheckCancels (): Promise<void> {
    clearTimeout(this.recheck)
    const ids = [...this.running.keys()]
    if (ids.length === 0 || this.stopped) return
    try {
      for (const executionId of await this.deps.cancels.pending(ids)) this.running.get(executionId)?.abort()
    } catch (err) {
      // The subscription is back but the command connection may not be yet (each reconnects on
      // its own), or Redis went away again: try again shortly, while runs are here to check.
      this.deps.log.warn({ err }, 'could not re-check execution cancels after a reconnect; retrying')
      this.recheck = setTimeout(() => { void this.recheckCancels() }, RESUBSCRIBE_MS)
      this.recheck.unref()
    }
  }

  /** A worker's turn with a job: wait for a slot (as a delayed job), run, record, announce. */
  async runJob (job: ExecutionJob): Promise<JobOutcome> {
    const { executionId, tenantId } = job
    // The slot first, then queued → running in one conditional UPDATE (markRunning): a run that
    // was cancelled or failed as lost meanwhile never acts, without a transaction of its own to
    // read the row first.
    const quotas = await this.deps.quotasOf(tenantId)
    const slot = await acquireRunSlot(this.deps.store, tenantId, executionId, quotas, job.timeoutMs)
    if (slot === null) {
      // Waiting for a slot is the slow path: here a job whose run already ended stops retrying.
      const row = await withTenant(this.deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
      if (row?.status !== 'queued') { this.slotWaits.delete(executionId); return { done: true } }
      const waited = this.slotWaits.get(executionId) ?? 0
      this.slotWaits.set(executionId, waited + 1)
      return { done: false, retryInMs: Math.min(SLOT_RETRY_MAX_MS, SLOT_RETRY_MIN_MS * 2 ** waited) }
    }
    this.slotWaits.delete(executionId)
    // Registered before the row says running, so a cancel that sees `running` finds it here.
    const controller = new AbortController()
    this.running.set(executionId, controller)
    try {
      // queued → running is written while the run starts, not before it: the run computes
      // meanwhile, but nothing leaves it (no event, no tool call) until the row says running.
      // Should it not (cancelled or found lost while queued), the run is stopped unseen.
      const marking = markRunning(this.deps.db, tenantId, executionId)
      const mayAct = marking.then((started) => started, () => false)

      // Events are appended in order, one after the other, while the run goes on; those of the
      // moment before the row said running wait for it.
      let tail: Promise<unknown> = Promise.resolve()
      const append = (type: Parameters<EventLog['append']>[1], data: Record<string, unknown>): void => {
        tail = tail.then(async () => await this.deps.events.append(executionId, type, data)).catch((err: unknown) => {
          this.deps.log.warn({ err, executionId }, 'could not append an execution event')
        })
      }
      let held: ExecutionEvent[] | undefined = []
      void mayAct.then((started) => {
        if (!started) controller.abort()
        else {
          // Off the run's path: only the tenant's queue bound counts it, and it expires anyway.
          void this.deps.store.releaseLease(queuedKey(tenantId), executionId).catch(() => {})
          for (const event of held ?? []) append(event.type, event.data)
        }
        held = undefined
      })
      // `final` goes out once the slot is free (the isolate really stopped), so a client that saw
      // it may start the next run at once; bounded, as a stuck isolate's runner is retired anyway.
      // A run stopped unseen also frees its slot before its job ends.
      let freed: () => void = () => {}
      const slotFreed = new Promise<void>((resolve) => { freed = resolve })
      const slotHeld = { release: async () => { try { await slot.release() } finally { freed() } }, refund: slot.refund }
      let result: ExecutionResult
      try {
        const outcome = await executeScript(this.deps.execution, { tenantId, userId: job.userId, permissions: job.permissions, quotas }, {
          executionId,
          code: job.code,
          timeoutMs: job.timeoutMs,
          ...(job.language !== undefined ? { language: job.language } : {}),
          admitted: slotHeld,
          signal: controller.signal,
          mayAct,
          onEvent: (event) => { if (held !== undefined) held.push(event); else append(event.type, event.data) }
        })
        result = outcome.ran ? outcome.result : { executionId, success: false, error: enclaveError('INTERNAL_ERROR', outcome.refusal.error), logs: [], stats: { duration: 0, toolCallCount: 0 } }
      } catch (err) {
        this.deps.log.error({ err, executionId }, 'queued execution failed')
        result = { executionId, success: false, error: enclaveError('INTERNAL_ERROR', 'The host failed to run the execution'), logs: [], stats: { duration: 0, toolCallCount: 0 } }
      }
      let waited: NodeJS.Timeout | undefined
      await Promise.race([slotFreed, new Promise((resolve) => { waited = setTimeout(resolve, SLOT_FREE_WAIT_MS) })])
      clearTimeout(waited)
      // Not marked running: another party ended it (and sent its final), or PostgreSQL refused
      // the mark, which is the job's failure as before.
      if (!await mayAct) {
        await marking
        return { done: true }
      }
      await tail
      await this.finish(tenantId, executionId, result, ['running'])
      return { done: true }
    } finally {
      this.running.delete(executionId)
    }
  }

  /** A job whose worker died: its run ends failed (never re-run) and its stream gets `final`. */
  async onLost (job: ExecutionJob): Promise<void> {
    const { executionId, tenantId } = job
    const result: ExecutionResult = {
      executionId, success: false, error: enclaveError('INTERNAL_ERROR', 'The instance running this execution stopped; it was not re-run'), logs: [], stats: { duration: 0, toolCallCount: 0 }
    }
    const row = await withTenant(this.deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
    if (row === undefined || FINISHED.has(row.status)) return
    await this.deps.store.releaseLease(queuedKey(tenantId), executionId).catch(() => {})
    // Its instance died before auditing the run: the check that ended it does, unless the run's
    // own end came first (then that instance lived to audit it).
    const stands = await this.finish(tenantId, executionId, result, ['queued', 'running'])
    // The log answers the final that stands as it stored it (a parsed copy on Redis): compared by content.
    if (JSON.stringify(stands) === JSON.stringify(result)) {
      const execution: ExecutionFacts = { tenantId, executionId, userId: job.userId, codeSha256: row.code_sha256 }
      this.deps.execution.hooks.ended(execution, result, { measured: false })
    }
  }

  /**
   * Ends a run: `final` first, so watchers learn the outcome without waiting for PostgreSQL, then
   * the row. The event log keeps one `final` per run and answers a second append with the first,
   * so a lost-run check racing the run's own end writes, like the run, the result that stands.
   * GET and DELETE read that `final` while the row still says running. The row's write is
   * retried: the run's outcome is already out and must not stay `running` in PostgreSQL.
   * Answers the result that stands.
   */
  private async finish (tenantId: string, executionId: string, result: ExecutionResult, from: ExecutionStatus[]): Promise<ExecutionResult> {
    let stands = result
    try {
      stands = (await this.deps.events.append(executionId, 'final', { result })).data.result as ExecutionResult
    } catch (err) {
      // Watchers re-read the row's outcome once they resume; the row must not lose it too.
      this.deps.log.warn({ err, executionId }, 'could not append an execution\'s final event')
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await finishExecutionAsTenant(this.deps.db, tenantId, executionId, stands, from)
        break
      } catch (err) {
        if (attempt >= FINISH_RETRY_MS.length || this.stopped) {
          this.deps.log.error({ err, executionId }, 'could not record a finished execution; its result stays in its event stream')
          break
        }
        await new Promise((resolve) => setTimeout(resolve, FINISH_RETRY_MS[attempt]))
      }
    }
    return stands
  }

  /** Deletes executions finished more than `retentionDays` ago, tenant by tenant. */
  async prune (retentionDays: number): Promise<number> {
    const cutoff = new Date(Date.now() - retentionDays * 24 * 3600_000)
    let total = 0
    for (const tenantId of await this.deps.tenantIndex.list()) {
      const { deleted, left } = await withTenant(this.deps.db, tenantId, async (trx) => ({ deleted: await pruneExecutions(trx, cutoff), left: await hasExecutions(trx) }))
      total += deleted
      if (!left) await this.deps.tenantIndex.remove(tenantId)
    }
    return total
  }
}

/** One process: a cancel always reaches its run directly, so nothing needs recording. */
export function createMemoryCancelRequests (): CancelRequests {
  return {
    async record () {},
    async pending () { return [] }
  }
}

export function createMemoryTenantIndex (): TenantIndex {
  const tenants = new Set<string>()
  return {
    async add (tenantId) { tenants.add(tenantId) },
    async list () { return [...tenants] },
    async remove (tenantId) { tenants.delete(tenantId) }
  }
}
