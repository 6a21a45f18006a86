import fp from 'fastify-plugin'
import type { ExecutionDeps } from '../services/execution/execute-script.ts'
import { createMemoryEventLog, type EventLog } from '../services/executions/event-log.ts'
import { createRedisEventLog } from '../services/executions/redis-event-log.ts'
import { withStoreErrors } from '../services/store/redis-errors.ts'
import { createMemoryQueue, type ExecutionQueue } from '../services/executions/execution-queue.ts'
import { createBullmqQueue } from '../services/executions/bullmq-queue.ts'
import { createMemoryCancelRequests, createMemoryTenantIndex, Executions, type CancelRequests, type TenantIndex } from '../services/executions/executions-service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Queued runs, their events and cancellation (POST/GET/DELETE /api/executions). */
    executions: Executions
    /** Each execution's numbered events (Redis Streams, or in process). */
    executionEvents: EventLog
    /** The execute use case's dependencies, shared by every entry point that runs a script. */
    executionDeps: ExecutionDeps
  }
}

const TENANT_INDEX_KEY = 'tenant-enclave:executions:tenants'
const PRUNE_EVERY_MS = 60 * 60_000
const CANCEL_KEY = 'tenant-enclave:executions:cancel:'
// A cancel matters while its run can still be running: at most its timeout (≤ 1 h), plus margin.
const CANCEL_TTL_MS = 2 * 60 * 60_000

/**
 * Queued executions on BullMQ + Redis Streams when REDIS_URL is set, else in process. The
 * worker side (SERVICE_ROLE all or worker) takes queued runs; every role cancels runs it holds.
 */
export default fp(async (fastify) => {
  const { config } = fastify
  const url = config.REDIS_URL
  const queue: ExecutionQueue = url === undefined ? createMemoryQueue() : createBullmqQueue(url, { leaseMs: config.EXECUTION_LEASE_MS, queueName: config.EXECUTION_QUEUE_NAME })
  // Its Redis calls' failures are StoreUnavailableError (a 503), as the store's are: ioredis
  // reports a lost connection with plain Errors that only the call site can tell apart.
  const events: EventLog = url === undefined ? createMemoryEventLog() : withStoreErrors(createRedisEventLog(url), ['append', 'ownerOf', 'finalOf', 'read'])
  const redis = fastify.redis
  const tenantIndex: TenantIndex = redis === null
    ? createMemoryTenantIndex()
    : withStoreErrors<TenantIndex>({
      async add (tenantId) { await redis.sadd(TENANT_INDEX_KEY, tenantId) },
      async list () { return await redis.smembers(TENANT_INDEX_KEY) },
      async remove (tenantId) { await redis.srem(TENANT_INDEX_KEY, tenantId) }
    }, ['add', 'list', 'remove'])
  const cancels: CancelRequests = redis === null
    ? createMemoryCancelRequests()
    : withStoreErrors<CancelRequests>({
      async record (executionId) { await redis.set(CANCEL_KEY + executionId, '1', 'PX', CANCEL_TTL_MS) },
      async pending (executionIds) {
        const found = await redis.mget(executionIds.map((id) => CANCEL_KEY + id))
        return executionIds.filter((_id, i) => found[i] !== null)
      }
    }, ['record', 'pending'])
  const { metrics } = fastify
  // What a run needs, whichever entry point starts it: /api/execute, a session frame, a queued run.
  const executionDeps: ExecutionDeps = {
    enclave: fastify.enclave,
    store: fastify.store,
    db: fastify.db,
    tools: fastify.tools,
    audit: fastify.audit,
    scripts: fastify.scripts,
    // A script names its tools: a made-up name gets no series of its own, or every new name
    // would add one for good (the registry holds the service's metrics forever).
    onToolCall: (tool, code) => { metrics.toolCalls.inc({ tool: fastify.tools.isKnownName(tool) ? tool : '(unknown)', outcome: code }) }
  }
  fastify.decorate('executionDeps', executionDeps)
  const executions = new Executions({
    execution: executionDeps,
    db: fastify.db,
    store: fastify.store,
    audit: fastify.audit,
    queue,
    events,
    tenantIndex,
    cancels,
    quotasOf: async (tenantId) => (await fastify.tenants.get(tenantId)).quotas,
    log: fastify.log
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
}, { name: 'executions', dependencies: ['config', 'db', 'store', 'tenants', 'tools', 'audit', 'enclave', 'code-mode', 'metrics'] })
