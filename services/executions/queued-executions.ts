// Queued executions (POST/GET/DELETE /api/executions): what the routes and the plugin call.
// Submission, the worker's side of a run and the API's view of one live beside this file; here
// are the cancel from any instance, the reads, and retention.
import { withTenant } from '../db/with-tenant.ts'
import { cancelledError } from '../enclave/index.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import { CANCEL_CHANNEL, claimEnd } from './cancel-requests.ts'
import { listRuns, type ExecutionPage } from './execution-list.ts'
import type { ExecutionRequestBody } from './execution-request.ts'
import type { ExecutionJob, JobOutcome } from './execution-queue.ts'
import { FINISHED, getExecution, hasExecutions, pruneExecutions } from './execution-repository.ts'
import { queuedKey, submitExecution, type Submitter } from './execution-submission.ts'
import { finalOf, viewWithFinal, type ExecutionView } from './execution-view.ts'
import { ExecutionWorker } from './execution-worker.ts'
import type { QueuedExecutionsDeps } from './queued-executions-deps.ts'
import type { ListFilter } from './list-filter.ts'
import { sweepUnstored } from './stored-runs.ts'
import type { ExecutionStatus } from '../db/schema.ts'
import { decideApprovals, type Decider, type DecisionRequest } from './approvals/decisions.ts'
import { endNotRunning, expireIfDue } from './approvals/waiting-runs.ts'
import { hasJournals, pruneJournals } from './approvals/journal-store.ts'

export type { QueuedExecutionsDeps }

const RESUBSCRIBE_MS = 200
const SUBSCRIBE_WAIT_MS = 5000
/** A journal this long past its run's expiry belongs to no run any more. */
const JOURNAL_ORPHAN_AFTER_MS = 24 * 3600_000
/** How often a worker instance writes the rows of ended runs that were not stored in time. */
const SWEEP_MS = 1000

/** A submission as the route answers it. */
export type SubmitAnswer =
  | { accepted: true, executionId: string, status: ExecutionStatus }
  | Exclude<Awaited<ReturnType<typeof submitExecution>>, { accepted: true }>

export class QueuedExecutions {
  private readonly deps: QueuedExecutionsDeps
  private readonly worker: ExecutionWorker
  private stopped = false
  private resubscribe: NodeJS.Timeout | undefined
  private recheck: NodeJS.Timeout | undefined
  private sweeper: NodeJS.Timeout | undefined

  constructor (deps: QueuedExecutionsDeps) {
    this.deps = deps
    this.worker = new ExecutionWorker(deps)
  }

  /** Subscribes to cancels from every instance; with `work`, takes queued runs too. */
  async start (options: { work: boolean, concurrency: number }): Promise<void> {
    // A cancel sent before this instance listens would be lost: start waits (a while) until the
    // subscription holds, and keeps trying in the background if Redis is not there yet.
    let subscribed: () => void = () => {}
    const ready = new Promise<void>((resolve) => { subscribed = resolve })
    const subscribe = async (): Promise<void> => {
      try {
        await this.deps.store.subscribe(CANCEL_CHANNEL, (executionId) => { this.worker.abort(executionId) }, () => { void this.recheckCancels() })
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
    if (!options.work) return
    this.deps.queue.work(async (job) => await this.worker.runJob(job), options.concurrency, async (job, reason) => { await this.worker.onLost(job, reason) })
    // One sweep at a time: a slow PostgreSQL must not pile them up.
    let sweeping = false
    this.sweeper = setInterval(() => {
      if (sweeping) return
      sweeping = true
      this.sweep().catch((err: unknown) => { this.deps.log.warn({ err }, 'sweeping unstored executions failed') }).finally(() => { sweeping = false })
    }, SWEEP_MS)
    this.sweeper.unref()
  }

  /** One sweep (the worker's timer runs it; tests too, at a later `now`): rows to store, waiting runs expired. */
  async sweep (now = Date.now()): Promise<number> {
    return await sweepUnstored(this.deps, now, async (record) => await expireIfDue(this.deps, record, now))
  }

  /** POST …/approvals: the run's record afterwards, or undefined when the tenant has no such run. */
  async decide (decider: Decider, executionId: string, request: DecisionRequest): Promise<ExecutionView | undefined> {
    const record = await decideApprovals(this.deps, decider, executionId, request)
    return record === undefined ? undefined : await viewWithFinal(this.deps.events, record)
  }

  stop (): void {
    this.stopped = true
    clearInterval(this.sweeper)
    clearTimeout(this.resubscribe)
    clearTimeout(this.recheck)
  }

  async submit (caller: Submitter, body: ExecutionRequestBody, idempotencyKey: string | undefined): Promise<SubmitAnswer> {
    const submitted = await submitExecution(this.deps, caller, body, idempotencyKey)
    if (!submitted.accepted) return submitted
    if (submitted.created) return { accepted: true, executionId: submitted.executionId, status: 'queued' }
    // The key's first run, as it is now; a moment before its record is kept, it is queued.
    const first = await this.get(caller.tenantId, submitted.executionId)
    return { accepted: true, executionId: submitted.executionId, status: first?.status ?? 'queued' }
  }

  /** The run's record while there is one (its row may not be written yet), else its row. */
  async get (tenantId: string, executionId: string): Promise<ExecutionView | undefined> {
    const record = await this.deps.records.get(executionId)
    if (record !== undefined) return record.tenantId === tenantId ? await viewWithFinal(this.deps.events, record) : undefined
    const row = await withTenant(this.deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
    if (row === undefined) return undefined
    return await viewWithFinal(this.deps.events, row)
  }

  async list (tenantId: string, options: ListFilter & { limit: number, before?: string }): Promise<ExecutionPage> {
    return await listRuns(this.deps, tenantId, options)
  }

  /** DELETE: 'accepted' once the run is ending (or ended, if it was queued). */
  async cancel (tenantId: string, userId: string, executionId: string): Promise<'accepted' | 'finished' | 'not-found'> {
    const record = await this.deps.records.get(executionId)
    if (record === undefined) {
      // No record: the run was stored and its record expired (or never was, in another tenant).
      const row = await withTenant(this.deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
      return row === undefined ? 'not-found' : 'finished'
    }
    if (record.tenantId !== tenantId) return 'not-found'
    if (FINISHED.has(record.status)) return 'finished'
    if (record.status === 'queued' || record.status === 'awaiting_approval') {
      // Not running (waiting for a slot, or for approval with no isolate): it ends here at once.
      const result: ExecutionResult = { executionId, success: false, error: cancelledError(), logs: [], stats: { duration: 0, toolCallCount: 0 } }
      const ended = await endNotRunning(this.deps, { ...record, userId }, record.status, result)
      if (ended !== undefined) {
        await this.deps.queue.remove(executionId, record.starts)
        await this.deps.store.releaseLease(queuedKey(tenantId), executionId).catch(() => {})
        return 'accepted'
      }
      // It started meanwhile: cancel it where it runs.
    }
    if (await finalOf(this.deps.events, executionId) !== undefined) return 'finished'
    // Running: the cancel and the run's own finish claim its end, and the first claim decides
    // (claimEnd). A run that has its result claimed first: 409, never a 202 that does not take.
    if (!await claimEnd(this.deps.store, executionId, record.starts)) return 'finished'
    if (this.worker.abort(executionId)) return 'accepted'
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
    const ids = this.worker.runningIds()
    if (ids.length === 0 || this.stopped) return
    try {
      for (const executionId of await this.deps.cancels.pending(ids)) this.worker.abort(executionId)
    } catch (err) {
      // The subscription is back but the command connection may not be yet (each reconnects on
      // its own), or Redis went away again: try again shortly, while runs are here to check.
      this.deps.log.warn({ err }, 'could not re-check execution cancels after a reconnect; retrying')
      this.recheck = setTimeout(() => { void this.recheckCancels() }, RESUBSCRIBE_MS)
      this.recheck.unref()
    }
  }

  /** A worker's turn with a job (the queue calls it; tests too). */
  async runJob (job: ExecutionJob): Promise<JobOutcome> { return await this.worker.runJob(job) }

  /** A job whose worker died (the queue's lost-run check calls it; tests too). */
  async onLost (job: ExecutionJob): Promise<void> { await this.worker.onLost(job) }

  /** Deletes executions finished more than `retentionDays` ago, tenant by tenant. */
  async prune (retentionDays: number): Promise<number> {
    const cutoff = new Date(Date.now() - retentionDays * 24 * 3600_000)
    let total = 0
    for (const tenantId of await this.deps.tenantIndex.list()) {
      const { deleted, left } = await withTenant(this.deps.db, tenantId, async (trx) => {
        const pruned = await pruneExecutions(trx, cutoff)
        // Orphaned journals only: a waiting run's expiry (or any end) deletes its own before this.
        await pruneJournals(trx, tenantId, new Date(Date.now() - JOURNAL_ORPHAN_AFTER_MS))
        return { deleted: pruned, left: await hasExecutions(trx) || await hasJournals(trx) }
      })
      total += deleted
      if (!left) await this.deps.tenantIndex.remove(tenantId)
    }
    return total
  }
}
