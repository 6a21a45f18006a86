import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { executeScript } from '../../services/executions/execute-script.ts'
import { writesInfo } from '../../services/executions/execution-hooks.ts'
import { codeSizeRefusalOf, ExecutionRequestBodySchema, newExecutionId, RefusalBodySchema, refusalAnswer, ScriptCode, ScriptLanguage } from '../../services/executions/execution-request.ts'
import { ExecutionResultSchema } from '../../schemas/execution-result.ts'
import { EVENT_STREAM_CONTENT } from '../../schemas/execution-event.ts'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl, RETRY_AFTER } from '../../schemas/responses.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'
import { CONTENT_TYPES, EventWriter, eventFormat } from '../../services/executions/event-writer.ts'
import { checkScript } from '../../services/code-mode/check-script.ts'
import { checkLimitsOf, estimatedCheckMs } from '../../services/code-mode/check-limits.ts'
import { LEVELS } from '../../services/enclave/index.ts'
import { modulesFor } from '../../services/sandbox-modules/catalog.ts'

const CheckBody = Type.Object({ code: ScriptCode, language: Type.Optional(ScriptLanguage) }, { $id: 'ScriptCheckRequest', additionalProperties: false })
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
}, { $id: 'ScriptCheck' })

const executeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/execute', {
    schema: operation('scripts', 'runScript', 'Run a script and wait for its result', 'Runs the script in an isolate of the caller\'s tenant and answers its ExecutionResult: 200 also when the script failed (`success: false`, `error`). With `Accept: text/event-stream` or `application/x-ndjson` the answer streams the run\'s ExecutionEvents instead, numbered as GET /api/executions/{id}/events numbers them, ending with `final` (which holds the result); a client that leaves cancels the run. A refusal (413, 429) or error before the run starts is always a plain JSON answer, whatever Accept asked for.', {
      body: ExecutionRequestBodySchema,
      response: {
        200: {
          description: 'The run\'s result (JSON), or its events as they happen (event stream, NDJSON)',
          content: { 'application/json': { schema: ExecutionResultSchema }, ...EVENT_STREAM_CONTENT },
          headers: rl
        },
        ...errors([400, 401]),
        413: json('The script is over the tier\'s maxCodeSizeKB (CODE_TOO_LARGE), or the body over BODY_LIMIT_BYTES (BODY_TOO_LARGE)', RefusalBodySchema),
        429: json('Over the per-minute rate limit, the daily execution or CPU quota (EXECUTION_QUOTA_EXCEEDED, CPU_QUOTA_EXCEEDED), a per-user limit (USER_QUOTA_EXCEEDED) or the concurrency limit: retry after Retry-After seconds', RefusalBodySchema, { ...RETRY_AFTER, ...rl }),
        ...errors([503])
      }
    })
  }, async (request, reply) => {
    const executionId = newExecutionId()
    // The run's log lines (info: refused, finished) carry its tenant and execution. A child
    // logger serializes its bindings when it is made, so it is made only when they are written.
    const log = writesInfo(request.log) ? request.log.child({ tenantId: request.tenant.tenantId, executionId }) : request.log
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
        writer = new EventWriter(format!, 0, reply.raw.socket)
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
    // A tenant over its check time (what it owes, what its checks in flight and this one, by its
    // length, are expected to cost) is refused before its body is read and parsed.
    preParsing: async (request) => { fastify.checkSlots.refuseOverTime(request.tenant.tenantId, checkLimitsOf(request.tenant.quotas, request.tenant.tier), estimatedCheckMs(Number(request.headers['content-length'] ?? 0) || 0, undefined)) },
    schema: operation('scripts', 'checkScript', 'Check a script without running it', 'Pre-flight check: parses and checks a script as a run would, and looks up its literal tool calls. Runs nothing and consumes no quota; counts against the request rate and the tier\'s check bounds (checks in flight, TypeScript size, parse time, check time per second).', {
      body: CheckBody,
      response: {
        200: json('What a run would refuse, and the tools the script calls', CheckResult, rl),
        ...errors([400, 401]),
        413: json('The script is over the tier\'s maxCodeSizeKB (CODE_TOO_LARGE), a TypeScript script over the tier\'s check size (CHECK_TOO_LARGE), or the body over BODY_LIMIT_BYTES', RefusalBodySchema),
        ...errors([422], { 422: 'The check took longer than the tier allows and was stopped (CHECK_TIMEOUT)' }),
        ...errors([429], { 429: 'Over the per-minute request rate (RATE_LIMITED), the tenant already has its tier\'s checks in flight (CHECK_LIMIT_EXCEEDED), or its checks have used the tier\'s check time (CHECK_TIME_EXCEEDED): retry after Retry-After seconds' }),
        ...errors([503])
      }
    })
  }, async (request, reply) => {
    const { tenantId, permissions, quotas, tier } = request.tenant
    // The size a run would refuse, refused the same way (but neither counted nor audited).
    const tooLarge = codeSizeRefusalOf(request.body.code, quotas)
    if (tooLarge !== undefined) {
      const { status, body } = refusalAnswer(tooLarge)
      return await reply.code(status).send(body)
    }
    // The tier's bounds: TypeScript size, checks in flight, and the parse's time on a thread.
    const limits = checkLimitsOf(quotas, tier)
    const release = await fastify.checkSlots.admit(tenantId, limits, request.body)
    let cpuMs: number | undefined
    try {
      return await checkScript({ tools: fastify.tools, scripts: fastify.checkScripts }, { tenantId, permissions }, request.body, { strict: LEVELS[fastify.enclave.securityLevel].astCheck, timeoutMs: limits.timeoutMs, onCpu: (ms) => { cpuMs = ms }, modules: modulesFor(fastify.sandboxModules, (await fastify.tenants.get(tenantId)).sandboxModules) })
    } finally {
      release(cpuMs)
    }
  })
}

export default executeRoutes
