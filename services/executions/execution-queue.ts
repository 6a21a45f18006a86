// Queued runs wait here until a worker takes them. BullMQ on Redis when REDIS_URL is set
// (bullmq-queue.ts); this process's memory otherwise, behind the same interface.

/** What a worker needs to run a submission; the code travels in the job, never in PostgreSQL. */
export interface ExecutionJob {
  executionId: string
  tenantId: string
  userId: string
  permissions: string[]
  code: string
  timeoutMs: number
  language?: 'javascript' | 'typescript'
  /** Which start of the run this job is: absent on the first; a run resumed after approval is started again. */
  start?: number
  /** When the run was accepted (its record's submittedAt): a run whose record was lost is recorded with it. */
  submittedAt?: string
}

/** The queue's id of a job: the execution id, and for a later start of the same run its number too. */
export const jobIdOf = (executionId: string, start = 1): string => start > 1 ? `${executionId}-${start}` : executionId

/** A job's handler either finished it (whatever the run's outcome) or asks to be tried again later. */
export type JobOutcome = { done: true } | { done: false, retryInMs: number }

export interface ExecutionQueue {
  readonly kind: 'bullmq' | 'memory'
  add (job: ExecutionJob): Promise<void>
  /** Drops a job that has not started (a cancelled queued run); no-op when it is gone or running. */
  remove (executionId: string, start?: number): Promise<void>
  /**
   * Starts taking jobs, at most `concurrency` at once. `onLost` is told of a job whose worker
   * died (its lease ran out), or that the queue failed (with why); such a job is never run again.
   */
  work (handler: (job: ExecutionJob) => Promise<JobOutcome>, concurrency: number, onLost: (job: ExecutionJob, reason?: string) => Promise<void>): void
  close (): Promise<void>
}

/** Embedded mode: one process, so no run can be lost to another instance's death. */
export function createMemoryQueue (): ExecutionQueue {
  const waiting: ExecutionJob[] = []
  const timers = new Set<NodeJS.Timeout>()
  let handler: ((job: ExecutionJob) => Promise<JobOutcome>) | undefined
  let limit = 0
  let active = 0
  let closed = false

  const pump = (): void => {
    const h = handler
    if (closed || h === undefined) return
    while (active < limit && waiting.length > 0) {
      const job = waiting.shift()!
      active++
      h(job).then((outcome) => {
        if (!outcome.done && !closed) {
          const timer = setTimeout(() => { timers.delete(timer); waiting.push(job); pump() }, outcome.retryInMs)
          timers.add(timer)
        }
      }, () => {}).finally(() => { active--; pump() })
    }
  }
  return {
    kind: 'memory',
    async add (job) { waiting.push(job); pump() },
    async remove (executionId, start = 1) {
      const i = waiting.findIndex((job) => job.executionId === executionId && (job.start ?? 1) === start)
      if (i >= 0) waiting.splice(i, 1)
    },
    work (h, concurrency) { handler = h; limit = concurrency; pump() },
    async close () {
      closed = true
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
    }
  }
}
