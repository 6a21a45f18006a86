import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody } from '../../services/errors/index.ts'
import { executeScript } from '../../services/executions/execute-script.ts'
import { codeSizeRefusalOf, ExecutionRequestBodySchema, newExecutionId, RefusalBodySchema, refusalAnswer, ScriptCode, ScriptLanguage } from '../../services/executions/execution-request.ts'
import { ExecutionResultSchema } from '../../schemas/execution-result.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'
import { CONTENT_TYPES, EventWriter, eventFormat } from '../../services/executions/event-writer.ts'
import { checkScript } from '../../services/code-mode/check-script.ts'
import { checkLimitsOf, CheckSlots } from '../../services/code-mode/check-limits.ts'
import { LEVELS } from '../../services/enclave/index.ts'

const CheckBody = Type.Object({ code: ScriptCode, language: Type.Optional(ScriptLanguage) }, { additionalProperties: false })
const Position = { line: Type.Integer({ minimum: 1 }), column: Type.Integer({ minimum: 1 }) }
const CheckResult = Type.Object({
  ok: Type.Boolean({ description: 'False on a syntax error, a forbidden construct, or a literal tool the caller could not call' }),
  errors: Type.Array(Type.Object({
    code: Type.Union([Type.Literal('VALIDATION_ERROR'), Type.Literal('TOOL_NOT_FOUND'), Type.Literal('TOOL_DISABLED'), Type.Literal('PERMISSION_DENIED')]),
    message: Type.String(),
    ...Position
  })),
  toolCalls: Type.Array(Type.Object({ name: Type.String(), ...Position, exists: Type.Boolean(), enabled: Type.Boolean(), permitted: Type.Boolean() }), { description: 'Every callTool whose tool name is a literal' }),
  dynamicToolCalls: Type.Integer({ minimum: 0, description: 'Uses of callTool whose tool name is known only when the script runs' })
})

const executeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Per instance, like the worker threads the checks use.
  const checkSlots = new CheckSlots()
  fastify.post('/execute', {
    schema: {
      tags: ['execution'],
      summary: 'Run a script in the caller\'s isolate; 200 also when the script failed',
      body: ExecutionRequestBodySchema,
      produces: ['application/json', 'text/event-stream', 'application/x-ndjson'],
      response: { 200: ExecutionResultSchema, 400: ErrorBody, 401: ErrorBody, 413: RefusalBodySchema, 429: RefusalBodySchema, 503: ErrorBody }
    }
  }, async (request, reply) => {
    const executionId = newExecutionId()
    const log = request.log.child({ tenantId: request.tenant.tenantId, executionId })
    // Streaming (Accept: text/event-stream or application/x-ndjson): the run's events as they
    // happen, numbered as GET /api/executions/:id/events numbers them, ending with `final`. The
    // stream opens once the run is admitted (a refusal is still a plain JSON answer), and a
    // client that leaves cancels the run.
    const format = eventFormat(request.headers.accept)
    let writer: EventWriter | undefined
    let seq = 0
    const left = new AbortController()
    const send = (type: StreamEvent['type'], data: Record<string, unknown>): void => {
      if (writer === undefined) {
        writer = new EventWriter(format!)
        reply.raw.on('close', () => { if (!reply.raw.writableFinished) left.abort(); writer?.end() })
        void reply.code(200).header('content-type', CONTENT_TYPES[format!]).header('cache-control', 'no-cache').send(writer.body as never)
      }
      writer.write({ seq: ++seq, type, at: new Date().toISOString(), data })
    }
    const outcome = await executeScript(fastify.executionDeps, request.tenant, {
      executionId,
      log,
      code: request.body.code,
      language: request.body.language,
      timeoutMs: request.body.timeoutMs,
      ...(format !== undefined ? { onEvent: (event) => { send(event.type, event.data) }, signal: left.signal } : {})
    })
    if (!outcome.ran) {
      const refusal = refusalAnswer(outcome.refusal)
      if (refusal.retryAfterSeconds !== undefined) reply.header('retry-after', String(refusal.retryAfterSeconds))
      return await reply.code(refusal.status).send(refusal.body)
    }
    const { result } = outcome
    if (format !== undefined) {
      send('final', { result })
      writer?.end()
      return reply
    }
    return result
  })

  fastify.post('/execute/check', {
    schema: {
      tags: ['execution'],
      summary: 'Pre-flight check: parse and check a script as a run would, and look up its literal tool calls; runs nothing, consumes no quota (but counts against the request rate and the tier\'s check bounds)',
      body: CheckBody,
      response: { 200: CheckResult, 400: ErrorBody, 401: ErrorBody, 413: RefusalBodySchema, 422: ErrorBody, 429: ErrorBody, 503: ErrorBody }
    }
  }, async (request, reply) => {
    const { tenantId, permissions, quotas } = request.tenant
    // The size a run would refuse, refused the same way (but neither counted nor audited).
    const tooLarge = codeSizeRefusalOf(request.body.code, quotas)
    if (tooLarge !== undefined) {
      const { status, body } = refusalAnswer(tooLarge)
      return await reply.code(status).send(body)
    }
    // The tier's bounds: TypeScript size, checks in flight, and the parse's time on a thread.
    const limits = checkLimitsOf(quotas)
    const release = checkSlots.admit(tenantId, limits, request.body)
    try {
      return await checkScript({ tools: fastify.tools, scripts: fastify.scripts }, { tenantId, permissions }, request.body, { strict: LEVELS[fastify.enclave.securityLevel].astCheck, timeoutMs: limits.timeoutMs })
    } finally {
      release()
    }
  })
}

export default executeRoutes
