import fp from 'fastify-plugin'
import type { ExecutionDeps } from '../services/executions/execute-script.ts'
import { createMemoryEventLog, type EventLog } from '../services/executions/event-log.ts'
import { createRedisEventLog } from '../services/executions/redis-event-log.ts'
import { auditedExecutions, combineExecutionHooks, measuredExecutions } from '../services/executions/execution-hooks.ts'
import { withStoreErrors } from '../services/store/redis-errors.ts'
import { createMemoryQueue, type ExecutionQueue } from '../services/executions/execution-queue.ts'
import { createBullmqQueue } from '../services/executions/bullmq-queue.ts'
import { QueuedExecutions } from '../services/executions/queued-executions.ts'
import { createMemoryCancelRequests, createRedisCancelRequests, type CancelRequests } from '../services/executions/cancel-requests.ts'
import { createMemoryTenantIndex, createRedisTenantIndex, type TenantIndex } from '../services/executions/tenant-index.ts'
import { createMemoryExecutionRecords, type ExecutionRecords } from '../services/executions/execution-records.ts'
import { createRedisExecutionRecords } from '../services/executions/redis-execution-records.ts'
import { redisUrl } from './config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Queued runs, their events and cancellation (POST/GET/DELETE /api/executions). */
    executions: QueuedExecutions
    /** Each execution's numbered events (Redis Streams, or in process). */
    executionEvents: EventLog
    /** The execute use case's dependencies, shared by every entry point that runs a script. */
    executionDeps: ExecutionDeps
  }
}

const PRUNE_EVERY_MS = 60 * 60_000

/**
 * Queued executions on BullMQ + Redis Streams when REDIS_URL is set, else in process. The
 * worker side (SERVICE_ROLE all or worker) takes queued runs; every role cancels runs it holds.
 */
export default fp(async (fastify) => {
  const { config } = fastify
  const url = redisUrl(config)
  const queue: ExecutionQueue = url === undefined ? createMemoryQueue() : createBullmqQueue(url, { leaseMs: config.EXECUTION_LEASE_MS, queueName: config.EXECUTION_QUEUE_NAME, log: fastify.log })
  // Its Redis calls' failures are StoreUnavailableError (a 503), as the store's are: ioredis
  // reports a lost connection with plain Errors that only the call site can tell apart.
  const events: EventLog = url === undefined ? createMemoryEventLog() : withStoreErrors(createRedisEventLog(url), ['append', 'keep', 'ownerOf', 'finalOf', 'read'])
  const redis = fastify.redis
  const tenantIndex: TenantIndex = redis === null ? createMemoryTenantIndex() : withStoreErrors<TenantIndex>(createRedisTenantIndex(redis), ['add', 'list', 'remove'])
  // The record of each accepted run: where it is until its row is written (the row is the worker's).
  const records: ExecutionRecords = redis === null ? createMemoryExecutionRecords() : withStoreErrors<ExecutionRecords>(createRedisExecutionRecords(redis), ['accept', 'get', 'restore', 'move', 'unstored', 'due', 'dueAt', 'stored', 'forget'])
  const cancels: CancelRequests = redis === null ? createMemoryCancelRequests() : withStoreErrors<CancelRequests>(createRedisCancelRequests(redis), ['record', 'pending'])
  const { metrics } = fastify
  // What a run needs, whichever entry point starts it: /api/execute, a session frame, a queued run.
  const executionDeps: ExecutionDeps = {
    enclave: fastify.enclave,
    store: fastify.store,
    db: fastify.db,
    tools: fastify.tools,
    // Tool calls' rows; an execution's own row is the hooks'.
    audit: fastify.audit,
    scripts: fastify.scripts,
    modules: fastify.sandboxModules,
    modulesOf: async (tenantId) => (await fastify.tenants.get(tenantId)).sandboxModules,
    // Every run, whichever entry point started it, is audited, counted and logged here alone.
    hooks: combineExecutionHooks(auditedExecutions(fastify.audit), measuredExecutions(metrics, fastify.log)),
    // A script names its tools: a made-up name gets no series of its own, or every new name
    // would add one for good (the registry holds the service's metrics forever).
    onToolCall: (tool, code) => { metrics.toolCalls.inc({ tool: fastify.tools.isKnownName(tool) ? tool : '(unknown)', outcome: code }) }
  }
  fastify.decorate('executionDeps', executionDeps)
  const executions = new QueuedExecutions({
    execution: executionDeps,
    db: fastify.db,
    store: fastify.store,
    queue,
    records,
    events,
    tenantIndex,
    cancels,
    quotasOf: async (tenantId) => (await fastify.tenants.get(tenantId)).quotas,
    tierOf: async (tenantId) => (await fastify.tenants.get(tenantId)).tier,
    perUserOf: async (tenantId) => (await fastify.tenants.get(tenantId)).perUser,
    log: fastify.log,
    approvalTtlMs: config.APPROVAL_TTL_SECONDS * 1000
  })
  const work = config.SERVICE_ROLE !== 'api'
  if (!work && url === undefined) fastify.log.warn('SERVICE_ROLE=api without REDIS_URL: queued executions have no worker to run them')
  await executions.start({ work, concurrency: config.EXECUTION_WORKER_CONCURRENCY })
  fastify.decorate('executions', executions)
  fastify.decorate('executionEvents', events)

  const prune = (): void => {
    executions.prune(config.EXECUTION_RETENTION_DAYS).then((deleted) => {
      if (deleted > 0) fastify.log.info({ deleted }, 'pruned old executions')
    }, (err: unknown) => { fastify.log.warn({ err }, 'pruning executions failed') })
  }
  const pruner = work ? setInterval(prune, PRUNE_EVERY_MS) : undefined
  pruner?.unref()

  // Before the enclave is disposed (plugins close in reverse order): the worker stops taking
  // jobs and lets its running ones finish within the shutdown grace.
  fastify.addHook('onClose', async () => {
    clearInterval(pruner)
    executions.stop()
    await queue.close()
    await events.close()
  })
}, { name: 'executions', dependencies: ['config', 'db', 'store', 'tenants', 'tools', 'audit', 'enclave', 'code-mode', 'sandbox-modules', 'metrics'] })
