// Queued executions (POST/GET/DELETE /api/executions): what the routes and the plugin call.
// Submission, the worker's side of a run and the API's view of one live beside this file; here
// are the cancel from any instance, the reads, and retention.
import { withTenant } from '../db/with-tenant.ts'
import { cancelledError } from '../enclave/index.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import { CANCEL_CHANNEL, claimEnd } from './cancel-requests.ts'
import type { ExecutionRequestBody } from './execution-request.ts'
import type { ExecutionJob, JobOutcome } from './execution-queue.ts'
import { FINISHED, finishExecution, getExecution, hasExecutions, listExecutions, pruneExecutions } from './execution-repository.ts'
import { queuedKey, submitExecution, type Submission, type Submitter } from './execution-submission.ts'
import { finalOf, viewWithFinal, type ExecutionView } from './execution-view.ts'
import { ExecutionWorker } from './execution-worker.ts'
import type { QueuedExecutionsDeps } from './queued-executions-deps.ts'
import type { ListFilter } from './list-filter.ts'

export type { QueuedExecutionsDeps }

/** OK for a success, the error code for a failure, undefined while the run is not over. */
const outcomeCodeOf = (view: ExecutionView): string | undefined => view.result === undefined ? undefined : view.result.success ? 'OK' : view.result.error?.code

const RESUBSCRIBE_MS = 200
const SUBSCRIBE_WAIT_MS = 5000

export class QueuedExecutions {
  private readonly deps: QueuedExecutionsDeps
  private readonly worker: ExecutionWorker
  private stopped = false
  private resubscribe: NodeJS.Timeout | undefined
  private recheck: NodeJS.Timeout | undefined

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
    if (options.work) this.deps.queue.work(async (job) => await this.worker.runJob(job), options.concurrency, async (job) => { await this.worker.onLost(job) })
  }

  stop (): void {
    this.stopped = true
    this.worker.stop()
    clearTimeout(this.resubscribe)
    clearTimeout(this.recheck)
  }

  async submit (caller: Submitter, body: ExecutionRequestBody, idempotencyKey: string | undefined): Promise<Submission> {
    return await submitExecution(this.deps, caller, body, idempotencyKey)
  }

  async get (tenantId: string, executionId: string): Promise<ExecutionView | undefined> {
    const row = await withTenant(this.deps.db, tenantId, async (trx) => await getExecution(trx, executionId))
    if (row === undefined) return undefined
    return await viewWithFinal(this.deps.events, row)
  }

  async list (tenantId: string, options: ListFilter & { limit: number, before?: string }): Promise<{ executions: ExecutionView[], nextBefore: string | null }> {
    const rows = await withTenant(this.deps.db, tenantId, async (trx) => await listExecutions(trx, options))
    // Unfinished rows are few (a tenant's slots and queue bound), so their finals are looked up
    // one by one. A row asked for as queued or running whose final is out has ended: it leaves
    // the page (which may then be short; nextBefore still says whether more rows follow). A
    // status filter for an end finds such a run once its row is written, a moment later.
    const views = await Promise.all(rows.map(async (row) => await viewWithFinal(this.deps.events, row)))
    const executions = views.filter((view) => (options.status === undefined || view.status === options.status) && (options.code === undefined || outcomeCodeOf(view) === options.code))
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
    if (await finalOf(this.deps.events, executionId) !== undefined) return 'finished'
    // Running: the cancel and the run's own finish claim its end, and the first claim decides
    // (claimEnd). A run that has its result claimed first: 409, never a 202 that does not take.
    if (!await claimEnd(this.deps.store, executionId)) return 'finished'
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
      const { deleted, left } = await withTenant(this.deps.db, tenantId, async (trx) => ({ deleted: await pruneExecutions(trx, cutoff), left: await hasExecutions(trx) }))
      total += deleted
      if (!left) await this.deps.tenantIndex.remove(tenantId)
    }
    return total
  }
}
