import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors.ts'
import { executeScript } from '../../services/execution/execute-script.ts'

const ERROR_CODES = [
  'VALIDATION_ERROR', 'EXECUTION_ERROR', 'TIMEOUT', 'MEMORY_LIMIT_EXCEEDED', 'OUTPUT_LIMIT_EXCEEDED',
  'MAX_TOOL_CALLS', 'TOOL_QUOTA_EXCEEDED', 'PERMISSION_DENIED', 'TOOL_DISABLED', 'UNKNOWN_TOOL',
  'TOOL_RATE_LIMITED', 'TOOL_ERROR', 'RUNNER_CRASHED', 'INTERNAL_ERROR'
]

const ExecuteBody = Type.Object({
  code: Type.String({ description: 'The body of an async function: top-level await and return work' }),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000, description: 'May lower the tier\'s maxExecutionDurationMs, never raise it' }))
}, { additionalProperties: false })

export const ExecutionResultSchema = Type.Object({
  executionId: Type.String(),
  success: Type.Boolean(),
  value: Type.Optional(Type.Unknown({ description: 'The script\'s return value (JSON)' })),
  error: Type.Optional(Type.Object({ name: Type.String(), code: Type.Enum(ERROR_CODES), message: Type.String() })),
  logs: Type.Array(Type.Object({ level: Type.Enum(['log', 'info', 'warn', 'error', 'debug']), message: Type.String() })),
  stats: Type.Object({
    duration: Type.Number({ description: 'Wall time in ms' }),
    toolCallCount: Type.Integer(),
    memoryUsage: Type.Optional(Type.Number({ description: 'Heap bytes used by the isolate' })),
    cpuTime: Type.Optional(Type.Number({ description: 'CPU time in ms' }))
  })
})

// 413 is also Fastify's answer to a body over BODY_LIMIT_BYTES, which has no `limit`.
const CodeTooLarge = Type.Object({ error: Type.String(), code: Type.String(), message: Type.Optional(Type.String()), limit: Type.Optional(Type.Integer({ description: 'maxCodeSizeKB, when the code is what is too large' })) })
const QuotaRefused = Type.Object({
  error: Type.String(),
  code: Type.String(),
  message: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer()),
  reset: Type.Optional(Type.String({ format: 'date-time', description: 'When the daily quota resets (UTC midnight)' }))
})

const executeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/execute', {
    schema: {
      tags: ['execution'],
      summary: 'Run a script in the caller\'s isolate; 200 also when the script failed',
      body: ExecuteBody,
      response: { 200: ExecutionResultSchema, 400: ErrorBody, 401: ErrorBody, 413: CodeTooLarge, 429: QuotaRefused, 503: ErrorBody }
    }
  }, async (request, reply) => {
    const executionId = randomUUID()
    const log = request.log.child({ tenantId: request.tenant.tenantId, executionId })
    const { metrics } = fastify
    metrics.executionsInFlight.inc()
    let outcome
    try {
      outcome = await executeScript({
        enclave: fastify.enclave,
        store: fastify.store,
        db: fastify.db,
        tools: fastify.tools,
        audit: fastify.audit,
        onToolCall: (tool, code) => { metrics.toolCalls.inc({ tool, outcome: code }) }
      }, request.tenant, { executionId, code: request.body.code, timeoutMs: request.body.timeoutMs })
    } finally {
      metrics.executionsInFlight.dec()
    }

    if (!outcome.ran) {
      const { refusal } = outcome
      metrics.quotaRefusals.inc({ kind: refusal.kind })
      log.info({ refusal: refusal.kind }, 'execution refused')
      switch (refusal.kind) {
        case 'code-size':
          return await reply.code(413).send({ error: `Code size limit exceeded (${refusal.limit} KB)`, code: 'CODE_TOO_LARGE', limit: refusal.limit })
        case 'concurrency':
          return await reply.code(429).send({ error: 'Concurrent execution limit exceeded', code: 'CONCURRENCY_LIMIT_EXCEEDED', limit: refusal.limit })
        case 'daily-executions':
          return await reply.code(429).header('retry-after', String(refusal.retryAfterSeconds))
            .send({ error: 'Execution quota exceeded', code: 'EXECUTION_QUOTA_EXCEEDED', limit: refusal.limit, reset: refusal.reset })
      }
    }
    const { result } = outcome
    metrics.executions.inc({ code: result.error?.code ?? 'OK' })
    metrics.executionDuration.observe(result.stats.duration / 1000)
    log.info({ success: result.success, errorCode: result.error?.code, durationMs: result.stats.duration, toolCalls: result.stats.toolCallCount }, 'execution finished')
    return result
  })
}

export default executeRoutes
