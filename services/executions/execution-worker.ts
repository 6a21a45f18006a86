// The worker's side of a queued run: wait for the tenant's slot, mark its record running, run it
// on the one execution path with its events going to the log, then `final`, the record and the
// row; and the end of a run whose worker died (never re-run).
import type { ExecutionStatus } from '../db/schema.ts'
import { enclaveError } from '../enclave/index.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import { acquireRunSlot, refundLostRun } from '../quotas/admission.ts'
import { cancelledResult, claimEnd } from './cancel-requests.ts'
import { executeScript, sha256, type ExecutionEvent } from './execute-script.ts'
import type { EventLog } from './event-log.ts'
import type { ExecutionFacts } from './execution-hooks.ts'
import { jobIdOf, type ExecutionJob, type JobOutcome } from './execution-queue.ts'
import { endIfRecordLost } from './lost-records.ts'
import type { RunRecord } from './execution-records.ts'
import { FINISHED, statusOf } from './execution-repository.ts'
import { queuedKey } from './execution-submission.ts'
import type { QueuedExecutionsDeps } from './queued-executions-deps.ts'
import { storeRun } from './stored-runs.ts'
import { deleteJournal } from './approvals/journal-store.ts'
import type { RunJournal } from './approvals/run-journal.ts'
import { journalForResume, suspendRun, type HeldEvent } from './approvals/waiting-runs.ts'

// A run waiting for its tenant's slot is retried after these delays (doubling): no hot loop.
const SLOT_RETRY_MIN_MS = 25
const SLOT_RETRY_MAX_MS = 500
const SLOT_FREE_WAIT_MS = 1000
/** How many started jobs an instance remembers (see startedHere). */
const STARTED_REMEMBERED = 10_000

export class ExecutionWorker {
  private readonly deps: QueuedExecutionsDeps
  /** Runs this instance is running, by id: a cancel aborts the controller. */
  private readonly running = new Map<string, AbortController>()
  private readonly slotWaits = new Map<string, number>()
  /**
   * Jobs this instance started (their record said running). After a Redis failover a job can
   * come back as waiting, and if its run's record lost the same last writes (one node holds
   * both) it says queued again: the record's queued → running move would let it run twice.
   */
  private readonly startedHere = new Set<string>()

  constructor (deps: QueuedExecutionsDeps) {
    this.deps = deps
  }

  /** The runs running here now. */
  runningIds (): string[] { return [...this.running.keys()] }

  /** Cancels a run if it runs here; false if it does not. */
  abort (executionId: string): boolean {
    const run = this.running.get(executionId)
    run?.abort()
    return run !== undefined
  }

  /** A worker's turn with a job: wait for a slot (as a delayed job), run, record, announce. */
  async runJob (job: ExecutionJob): Promise<JobOutcome> {
    const { executionId, tenantId } = job
    if (this.startedHere.has(jobIdOf(executionId, job.start))) return { done: true }
    // The slot first, then queued → running in one conditional change of the record: a run that
    // was cancelled or failed as lost meanwhile never acts, without a read of its own first.
    const caller = await this.callerOf(job)
    const slot = await acquireRunSlot(this.deps.store, caller, executionId, job.timeoutMs)
    if (slot === null) {
      // Waiting for a slot is the slow path: here a job whose run already ended stops retrying.
      const record = await this.deps.records.get(executionId)
      if (record?.status !== 'queued') {
        this.slotWaits.delete(executionId)
        if (record === undefined) await endIfRecordLost(this.deps, job, async (lost, reason) => { await this.onLost(lost, reason) })
        return { done: true }
      }
      const waited = this.slotWaits.get(executionId) ?? 0
      this.slotWaits.set(executionId, waited + 1)
      return { done: false, retryInMs: Math.min(SLOT_RETRY_MAX_MS, SLOT_RETRY_MIN_MS * 2 ** waited) }
    }
    this.slotWaits.delete(executionId)
    // A later start of a run that waited for approval replays what the earlier ones did.
    const start = job.start ?? 1
    let journal: RunJournal | undefined
    if (start > 1) {
      const loaded = await journalForResume(this.deps, job, slot)
      if (loaded === 'retry') return { done: false, retryInMs: SLOT_RETRY_MAX_MS }
      if (loaded === undefined) return { done: true }
      journal = loaded
    }
    // Registered before the record says running, so a cancel that sees `running` finds it here.
    const controller = new AbortController()
    this.running.set(executionId, controller)
    try {
      // queued → running is written while the run starts, not before it: the run computes
      // meanwhile, but nothing leaves it (no event, no tool call) until the record says running.
      // Should it not (cancelled or found lost while queued), the run is stopped unseen.
      const marking = this.deps.records.move(executionId, ['queued'], { status: 'running', startedAt: new Date().toISOString() })
      const mayAct = marking.then((started) => started !== undefined, () => false)

      // Events are appended in order, one after the other, while the run goes on; those of the
      // moment before the record said running wait for it.
      let tail: Promise<unknown> = Promise.resolve()
      const append = (type: Parameters<EventLog['append']>[1], data: Record<string, unknown>): void => {
        tail = tail.then(async () => await this.deps.events.append(executionId, type, data)).catch((err: unknown) => {
          this.deps.log.warn({ err, executionId }, 'could not append an execution event')
        })
      }
      let held: ExecutionEvent[] | undefined = []
      // approval_required goes out once the run is seen waiting (suspendRun), not before.
      const forTheWait: HeldEvent[] = []
      void mayAct.then((started) => {
        if (!started) controller.abort()
        else {
          this.startedHere.add(jobIdOf(executionId, job.start))
          if (this.startedHere.size > STARTED_REMEMBERED) this.startedHere.delete(this.startedHere.values().next().value as string)
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
      // The run's end is claimed before anyone hears of it: a cancel that claimed it first wins.
      let settled: ExecutionResult | undefined
      let claimLost = false
      const settle = async (ran: ExecutionResult): Promise<ExecutionResult> => {
        if (settled === undefined) {
          claimLost = !await this.claimWon(executionId, start)
          settled = claimLost ? cancelledResult(executionId, ran) : ran
        }
        return settled
      }
      let result: ExecutionResult
      let suspended: RunJournal | undefined
      try {
        const outcome = await executeScript(this.deps.execution, caller, {
          executionId,
          code: job.code,
          timeoutMs: job.timeoutMs,
          ...(job.language !== undefined ? { language: job.language } : {}),
          admitted: slotHeld,
          signal: controller.signal,
          mayAct,
          settle,
          approvals: journal === undefined ? {} : { journal },
          onEvent: (event) => {
            if (event.type === 'approval_required') forTheWait.push({ type: 'approval_required', data: event.data })
            else if (held !== undefined) held.push(event)
            else append(event.type, event.data)
          }
        })
        result = outcome.ran ? outcome.result : { executionId, success: false, error: enclaveError('INTERNAL_ERROR', outcome.refusal.error), logs: [], stats: { duration: 0, toolCallCount: 0 } }
        if (outcome.ran) suspended = outcome.suspended?.journal
      } catch (err) {
        this.deps.log.error({ err, executionId }, 'queued execution failed')
        result = { executionId, success: false, error: enclaveError('INTERNAL_ERROR', 'The host failed to run the execution'), logs: [], stats: { duration: 0, toolCallCount: 0 } }
      }
      let waited: NodeJS.Timeout | undefined
      await Promise.race([slotFreed, new Promise((resolve) => { waited = setTimeout(resolve, SLOT_FREE_WAIT_MS) })])
      clearTimeout(waited)
      // Not marked running: another party ended it (and sent its final), or Redis refused the
      // mark, which is the job's failure as before.
      if (!await mayAct) {
        // No record at all (Redis lost it): the run is ended failed, not left unseen for good.
        if (await marking === undefined) await endIfRecordLost(this.deps, job, async (lost, reason) => { await this.onLost(lost, reason) })
        return { done: true }
      }
      result = await settle(result)
      await tail
      // Stopped at gated calls, and not cancelled meanwhile (a cancel that claimed this start's
      // end ends the run cancelled, below): the run waits, holding no slot and no isolate.
      // A start that suspended but cannot wait is the run's end, which its start did not tell
      // the hooks (audit, metrics) of: told here once the end stands.
      const untold = suspended !== undefined && !claimLost
      if (suspended !== undefined && !claimLost) {
        try {
          const waits = await suspendRun(this.deps, job, suspended, forTheWait)
          if (waits === 'waiting' || waits === 'gone') return { done: true }
          // No place or no storage left for it: the run ends, and its gated calls never act.
          result = { executionId, success: false, error: waits, logs: result.logs, stats: result.stats }
        } catch (err) {
          this.deps.log.error({ err, executionId }, 'could not keep a run waiting for approval')
          result = { executionId, success: false, error: enclaveError('INTERNAL_ERROR', 'The run stopped for approval, but its record could not be kept; it was ended'), logs: result.logs, stats: result.stats }
        }
      }
      // Queued too: a failover's promoted replica may lack the move to running (async replication).
      const ended = await this.finish(executionId, result, ['queued', 'running'])
      if (untold && ended !== undefined) this.deps.execution.hooks.ended({ tenantId, executionId, userId: job.userId, codeSha256: sha256(job.code) }, result)
      if (start > 1) await deleteJournal(this.deps.db, tenantId, executionId).catch((err: unknown) => { this.deps.log.warn({ err, executionId }, 'could not delete an ended run\'s journal') })
      return { done: true }
    } finally {
      this.running.delete(executionId)
    }
  }

  /**
   * A job whose worker died, or that the queue failed (`reason`): its run ends failed (never
   * re-run), its stream gets `final`, and today's execution it took is given back.
   */
  async onLost (job: ExecutionJob, reason = 'The instance running this execution stopped; it was not re-run'): Promise<void> {
    const { executionId, tenantId } = job
    const lost: ExecutionResult = {
      executionId, success: false, error: enclaveError('INTERNAL_ERROR', reason), logs: [], stats: { duration: 0, toolCallCount: 0 }
    }
    const record = await this.deps.records.get(executionId)
    if (record === undefined || FINISHED.has(record.status)) return
    // A cancel answered 202 before the instance died: the run ends cancelled, as promised.
    const result = record.status === 'running' ? await this.claim(executionId, lost, record.starts) : lost
    await this.deps.store.releaseLease(queuedKey(tenantId), executionId).catch(() => {})
    // Its instance died before auditing the run: the check that ended it does, unless the run's
    // own end came first (then that instance lived to audit it).
    const ended = await this.finish(executionId, result, ['queued', 'running'])
    if ((record.starts ?? 1) > 1) await deleteJournal(this.deps.db, tenantId, executionId).catch(() => {})
    if (ended !== undefined) {
      // Only the party whose result stood gives the execution back: exactly once.
      await refundLostRun(this.deps.store, await this.callerOf(job)).catch((err: unknown) => {
        this.deps.log.warn({ err, executionId }, 'could not give back a lost execution\'s daily quota')
      })
      const execution: ExecutionFacts = { tenantId, executionId, userId: job.userId, codeSha256: record.codeSha256 }
      this.deps.execution.hooks.ended(execution, result, { measured: false })
    }
  }

  /** The submitter of a job with its tenant's quotas now, as admission saw them. */
  private async callerOf (job: ExecutionJob): Promise<Parameters<typeof acquireRunSlot>[1] & { permissions: string[] }> {
    const { tenantId } = job
    const quotas = await this.deps.quotasOf(tenantId)
    const tier = await this.deps.tierOf?.(tenantId)
    const perUser = await this.deps.perUserOf?.(tenantId)
    return { tenantId, userId: job.userId, permissions: job.permissions, quotas, ...(tier !== undefined ? { tier } : {}), ...(perUser !== undefined ? { perUser } : {}) }
  }

  /**
   * The result that stands for a run that ended here: its own, unless a cancel claimed its end
   * first (cancel-requests.ts). Should the store not answer, the run's own result stands: a
   * cancel could not have claimed the end without it either, and would have been answered 503.
   */
  private async claim (executionId: string, ran: ExecutionResult, start?: number): Promise<ExecutionResult> {
    return await this.claimWon(executionId, start) ? ran : cancelledResult(executionId, ran)
  }

  /** Whether this start's end is the run's own (no cancel claimed it first). */
  private async claimWon (executionId: string, start?: number): Promise<boolean> {
    try {
      return await claimEnd(this.deps.store, executionId, start)
    } catch (err) {
      this.deps.log.warn({ err, executionId }, 'could not claim an execution\'s end; its own result stands')
      return true
    }
  }

  /**
   * Ends a run: `final` first, so watchers learn the outcome at once, then the record, then the
   * row (off the final's path; stored-runs.ts). The event log keeps one `final` per run and
   * answers a second append with the first, so a lost-run check racing the run's own end records,
   * like the run, the result that stands. GET and DELETE read that `final` while the record still
   * says running. Answers the ended record when this call ended the run (moved it out of
   * `from`), undefined when another party had.
   */
  private async finish (executionId: string, result: ExecutionResult, from: ExecutionStatus[]): Promise<RunRecord | undefined> {
    let stands = result
    let at = new Date().toISOString()
    try {
      const final = await this.deps.events.append(executionId, 'final', { result })
      stands = final.data.result as ExecutionResult
      at = final.at
    } catch (err) {
      // Watchers re-read the run's outcome from its record once they resume.
      this.deps.log.warn({ err, executionId }, 'could not append an execution\'s final event')
    }
    const ended = await this.deps.records.move(executionId, from, { status: statusOf(stands), finishedAt: at, result: stands })
    if (ended === undefined) return undefined
    // Only a lost-run check whose result stood ended the run; a run's own end that came first
    // (its final stands) has its own record move, and its instance audits it.
    await storeRun(this.deps, ended)
    return JSON.stringify(stands) === JSON.stringify(result) ? ended : undefined
  }
}
