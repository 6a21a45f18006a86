// Queued runs on BullMQ (Redis). Why BullMQ: it is maintained, already speaks the project's
// ioredis, and gives what a run queue needs without a protocol of our own: job ids (the
// execution id, so a job is added once), locks renewed while a worker lives and a stalled-job
// check when it dies (our lease), delayed jobs (a run waiting for its tenant's slot waits there,
// not on a worker), and removal of jobs not yet started.
import { Redis } from 'ioredis'
import { DelayedError, Job, Queue, Worker } from 'bullmq'
import type { ExecutionJob, ExecutionQueue } from './execution-queue.ts'

const QUEUE_NAME = 'executions'
const PREFIX = 'tenant-enclave:bull'
const CLOSE_WAIT_MS = 5000

export interface BullmqQueueOptions {
  /** How long a worker's hold on a running job lasts without renewal: a dead instance's runs are found lost after it. */
  leaseMs: number
}

export function createBullmqQueue (url: string, opts: BullmqQueueOptions): ExecutionQueue {
  // BullMQ's connections block (BRPOPLPUSH and the like): it needs maxRetriesPerRequest null.
  const connection = new Redis(url, { maxRetriesPerRequest: null })
  connection.on('error', () => {})
  const queue = new Queue<ExecutionJob>(QUEUE_NAME, { connection, prefix: PREFIX })
  queue.on('error', () => {})
  let worker: Worker<ExecutionJob> | undefined

  return {
    kind: 'bullmq',
    async add (job) {
      // attempts 1: a run is never retried by the queue (its tools may have had effects).
      await queue.add('run', job, { jobId: job.executionId, attempts: 1, removeOnComplete: true, removeOnFail: { age: 24 * 3600 } })
    },
    async remove (executionId) {
      await queue.remove(executionId).catch(() => 0)
    },
    work (handler, concurrency, onLost) {
      worker = new Worker<ExecutionJob>(QUEUE_NAME, async (job, token) => {
        const outcome = await handler(job.data)
        if (outcome.done) return
        // The tenant has no free slot: the job waits as a delayed job, holding no worker.
        await job.moveToDelayed(Date.now() + outcome.retryInMs, token)
        throw new DelayedError()
      }, {
        connection,
        prefix: PREFIX,
        concurrency,
        lockDuration: opts.leaseMs,
        stalledInterval: opts.leaseMs,
        // A job whose worker died is failed, never handed to another worker.
        maxStalledCount: 0
      })
      worker.on('error', () => {})
      worker.on('stalled', (jobId: string) => {
        Job.fromId<ExecutionJob>(queue, jobId).then(async (job) => {
          if (job !== undefined) await onLost(job.data)
        }).catch(() => {})
      })
    },
    async close () {
      // The worker lets its running jobs finish; bounded, because with Redis gone BullMQ's close
      // would wait for it forever.
      let timer: NodeJS.Timeout | undefined
      const closing = (async () => { await worker?.close(); await queue.close() })().catch(() => {})
      await Promise.race([closing, new Promise((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS) })])
      clearTimeout(timer)
      // Whatever did not close (Redis unreachable) is cut, so nothing keeps reconnecting.
      // Not awaited: with Redis gone these would wait for it too.
      worker?.disconnect().catch(() => {})
      queue.disconnect().catch(() => {})
      connection.disconnect()
    }
  }
}
