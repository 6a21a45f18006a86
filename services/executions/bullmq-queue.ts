// Queued runs on BullMQ (Redis). Why BullMQ: it is maintained, already speaks the project's
// ioredis, and gives what a run queue needs without a protocol of our own: job ids (the
// execution id, so a job is added once), locks renewed while a worker lives and a stalled-job
// check when it dies (our lease), delayed jobs (a run waiting for its tenant's slot waits there,
// not on a worker), and removal of jobs not yet started.
import { DelayedError, Job, Queue, Worker } from 'bullmq'
import { jobIdOf, type ExecutionJob, type ExecutionQueue } from './execution-queue.ts'
import { openRedis } from '../store/redis-connection.ts'
import { startQueueWatchdog, type QueueWatchdog, type WatchdogLog } from './queue-watchdog.ts'

// BullMQ's scripts take many keys of one queue at once: the prefix is a hash tag (as BullMQ's
// docs ask for Redis Cluster), so all of a queue's keys live in one slot. Queue names are
// [a-z0-9-] (the config's pattern), so nothing else in a key has a brace.
export const BULLMQ_PREFIX = '{tenant-enclave:bull}'
const CLOSE_WAIT_MS = 5000
// A step of closing that needs no Redis ends within a few event-loop turns; this only bounds it.
const CUT_WAIT_MS = 1000
// The watchdog (queue-watchdog.ts): an idle worker that took nothing for
// STUCK_AFTER_MS while jobs could be taken is recreated; a promotion takes seconds, and a
// healthy worker takes a waiting job within milliseconds, so this is far from either.
const WATCH_EVERY_MS = 1000
const STUCK_AFTER_MS = 10_000
const STUCK_MAX_BACKOFF_MS = 5 * 60_000
// BullMQ scores a delayed job with its due time × 0x1000 (and a counter below that).
const DELAYED_SCORE_SCALE = 0x1000

export interface BullmqQueueOptions {
  /** How long a worker's hold on a running job lasts without renewal: a dead instance's runs are found lost after it. */
  leaseMs: number
  /** The BullMQ queue's name: every instance of one service uses the same one. */
  queueName: string
  /** Where the watchdog says it recreated the worker. */
  log?: WatchdogLog
  /** The watchdog's threshold (tests shorten it). */
  stuckAfterMs?: number
}

/** Redis is not answering: a submission is refused at once (503) rather than waiting for it. */
function unreachable (): Error {
  return Object.assign(new Error('Redis is unreachable: the execution queue cannot take runs now'), { code: 'STORE_UNAVAILABLE' })
}

export function createBullmqQueue (url: string, opts: BullmqQueueOptions): ExecutionQueue {
  // BullMQ's connections block (BRPOPLPUSH and the like): it needs maxRetriesPerRequest null.
  // On a cluster BullMQ duplicates it for its blocking reads as it does on one server.
  const connection = openRedis(url, { maxRetriesPerRequest: null })
  connection.on('error', () => {})
  // The Queue and Worker are made only once Redis has answered: made while it is unreachable,
  // they wait for it in ways close() cannot end (a worker's lock-renewal timer and a duplicated
  // blocking connection that reconnects forever), and the process would never exit.
  let queue: Queue<ExecutionJob> | undefined
  let worker: Worker<ExecutionJob> | undefined
  // Workers the watchdog replaced, closing while their running jobs finish.
  const retiring = new Set<Worker<ExecutionJob>>()
  let watchdog: QueueWatchdog | undefined
  let startWorker: (() => void) | undefined
  let closed = false
  // Jobs the handler is running here, so close() can let them finish.
  let active = 0
  let lastTakenAt = 0
  let whenIdle: (() => void) | undefined
  const ensureQueue = (): Queue<ExecutionJob> => {
    if (queue === undefined) {
      queue = new Queue<ExecutionJob>(opts.queueName, { connection, prefix: BULLMQ_PREFIX })
      queue.on('error', () => {})
    }
    return queue
  }
  const onReady = (): void => {
    if (closed) return
    ensureQueue()
    startWorker?.()
    startWorker = undefined
  }
  connection.on('ready', onReady)
  // The queue holds commands while Redis is away (maxRetriesPerRequest null): refuse instead.
  const live = (): Queue<ExecutionJob> => {
    if (closed || connection.status !== 'ready') throw unreachable()
    return ensureQueue()
  }

  return {
    kind: 'bullmq',
    async add (job) {
      // attempts 1: a run is never retried by the queue (its tools may have had effects).
      // One job per start: a run resumed after approval is a new job of the same execution.
      await live().add('run', job, { jobId: jobIdOf(job.executionId, job.start), attempts: 1, removeOnComplete: true, removeOnFail: { age: 24 * 3600 } })
    },
    async remove (executionId, start) {
      // Best effort, as before: a job left behind finds its execution cancelled when it starts.
      try { await live().remove(jobIdOf(executionId, start)) } catch {}
    },
    work (handler, concurrency, onLost) {
      const makeWorker = (): Worker<ExecutionJob> => {
        const jobs = ensureQueue()
        const made = new Worker<ExecutionJob>(opts.queueName, async (job, token) => {
          lastTakenAt = Date.now()
          active++
          let outcome
          try {
            outcome = await handler(job.data)
          } finally {
            if (--active === 0) whenIdle?.()
          }
          if (outcome.done) return
          // The tenant has no free slot: the job waits as a delayed job, holding no worker.
          await job.moveToDelayed(Date.now() + outcome.retryInMs, token)
          throw new DelayedError()
        }, {
          connection,
          prefix: BULLMQ_PREFIX,
          concurrency,
          lockDuration: opts.leaseMs,
          stalledInterval: opts.leaseMs,
          // A job whose worker died is failed, never handed to another worker.
          maxStalledCount: 0
        })
        made.on('error', () => {})
        // The handler fails no job on purpose (a run's failure is its result, a wait is a delayed
        // job): a failed job is a call that failed under it, such as moving a job that waits for
        // its tenant's slot to delayed while Redis failed over. Its run would otherwise stay
        // queued for good: it ends as a lost one, with its code.
        made.on('failed', (job) => {
          if (job !== undefined) onLost(job.data, 'The execution queue dropped this execution when a dependency failed under it; it was not re-run').catch(() => {})
        })
        made.on('stalled', (jobId: string) => {
          Job.fromId<ExecutionJob>(jobs, jobId).then(async (job) => {
            if (job !== undefined) await onLost(job.data)
          }).catch(() => {})
        })
        return made
      }
      // Jobs a worker could take now: waiting ones, or delayed ones that are due.
      const pending = async (): Promise<boolean> => {
        if (closed || connection.status !== 'ready') return false
        const key = `${BULLMQ_PREFIX}:${opts.queueName}:`
        const [waiting, first] = await Promise.all([connection.llen(`${key}wait`), connection.zrange(`${key}delayed`, '0', '0', 'WITHSCORES')])
        return waiting > 0 || (first.length === 2 && Math.floor(Number(first[1]) / DELAYED_SCORE_SCALE) <= Date.now())
      }
      startWorker = () => {
        worker = makeWorker()
        watchdog = startQueueWatchdog({
          checkEveryMs: WATCH_EVERY_MS,
          stuckAfterMs: opts.stuckAfterMs ?? STUCK_AFTER_MS,
          maxBackoffMs: STUCK_MAX_BACKOFF_MS,
          idle: () => active === 0,
          lastTakenAt: () => lastTakenAt,
          pending,
          log: opts.log ?? { warn: () => {} },
          recreate: () => {
            if (closed) return
            // The old one runs no job (idle): a forced close loses none, and does not wait for a
            // blocking read that may hang; its blocking connection goes with it. A new one takes over.
            const old = worker
            if (old !== undefined) {
              retiring.add(old)
              old.close(true).catch(() => {}).finally(() => { retiring.delete(old) })
            }
            worker = makeWorker()
          }
        })
      }
      if (connection.status === 'ready') onReady()
    },
    async close () {
      closed = true
      startWorker = undefined
      watchdog?.stop()
      connection.off('ready', onReady)
      let timer: NodeJS.Timeout | undefined
      const within = async (work: Promise<unknown>, ms: number, alsoEnds?: Promise<void>): Promise<void> => {
        await Promise.race([work.catch(() => {}), new Promise((resolve) => { timer = setTimeout(resolve, ms) }), ...(alsoEnds === undefined ? [] : [alsoEnds])])
        clearTimeout(timer)
      }
      // BullMQ's own graceful close waits for Redis when it is gone (our connection holds its
      // commands: maxRetriesPerRequest null) and, until it ends, its lock-renewal and
      // stalled-check timers keep the process alive. So the graceful part is ours: stop taking
      // jobs (no Redis needed), let running jobs finish for at most CLOSE_WAIT_MS while Redis is
      // there (a lost connection ends the wait), then a forced close, which needs no Redis.
      if (worker !== undefined) {
        await within(worker.pause(true), CUT_WAIT_MS)
        if (connection.status === 'ready' && active > 0) {
          let lost: () => void = () => {}
          const gone = new Promise<void>((resolve) => { lost = resolve; connection.once('close', resolve) })
          await within(new Promise<void>((resolve) => { whenIdle = resolve }), CLOSE_WAIT_MS, gone)
          connection.off('close', lost)
        }
        await within(worker.close(true), CUT_WAIT_MS)
      }
      // Replaced workers still closing: their jobs are the ones waited for above.
      for (const old of retiring) await within(old.close(true), CUT_WAIT_MS)
      if (queue !== undefined) await within(connection.status === 'ready' ? queue.close() : Promise.resolve(), CUT_WAIT_MS)
      // Whatever did not close is cut, so nothing keeps reconnecting. Not awaited: with Redis
      // gone these would wait for it too.
      worker?.disconnect().catch(() => {})
      for (const old of retiring) old.disconnect().catch(() => {})
      queue?.disconnect().catch(() => {})
      connection.disconnect()
    }
  }
}
