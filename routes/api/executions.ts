import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from 'typebox'
import { ServiceError } from '../../services/errors/index.ts'
import { ExecutionResultSchema } from '../../schemas/execution-result.ts'
import { EVENT_STREAM_CONTENT, type StreamEvent } from '../../schemas/execution-event.ts'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl, RETRY_AFTER } from '../../schemas/responses.ts'
import { follow, followIfAllowed } from '../../services/executions/event-log.ts'
import { CONTENT_TYPES, EventWriter, eventFormat } from '../../services/executions/event-writer.ts'
import { eventStreamLimit, OpenStreams } from '../../services/executions/open-streams.ts'
import { ExecutionRequestBodySchema, RefusalBodySchema, refusalAnswer } from '../../services/executions/execution-request.ts'
import { BeforeCursor, ExecutionIdParams, pageAsked, PageLimit } from '../../schemas/paging.ts'
import { EXECUTION_STATUSES, listFilterOf } from '../../services/executions/list-filter.ts'
import type { DecisionRequest } from '../../services/executions/approvals/decisions.ts'

const NOT_FOUND = 'No execution with this id in the caller\'s tenant (NOT_FOUND); an id that is no UUID included'
const STATUSES = EXECUTION_STATUSES
/** Who may decide on a waiting run's calls: a token of the run's tenant with this permission. */
const DECIDE_PERMISSION = 'approvals:decide'
const PAGE_DEFAULT = 50

const SubmitHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'The same key from the same tenant within 24 h returns the first execution; with a different body, 422 IDEMPOTENCY_KEY_REUSED' }))
})
const Status = Type.Enum(STATUSES, { $id: 'ExecutionStatus' })
const Submitted = Type.Object({ executionId: Type.String({ format: 'uuid' }), status: Status }, { $id: 'SubmittedExecution' })
const ExecutionView = Type.Object({
  executionId: Type.String({ format: 'uuid' }),
  status: Status,
  submittedAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  result: Type.Optional(ExecutionResultSchema),
  expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'While awaiting_approval: when the run ends APPROVAL_EXPIRED if nobody decides (APPROVAL_TTL_SECONDS)' }))
}, { $id: 'Execution', description: 'A queued run: its status, and its result once finished' })
const Decision = Type.Object({
  callId: Type.String({ pattern: '^call-[0-9]{1,9}$', description: 'A pending call\'s id, from its approval_required event' }),
  approve: Type.Boolean(),
  reason: Type.Optional(Type.String({ maxLength: 1000, description: 'Shown to the script in APPROVAL_REJECTED\'s message, and kept in the audit' }))
}, { additionalProperties: false })
// One object rather than a union of the two forms: a mistake is then named field by field, and
// which form it is gets checked below with a message that says what to send.
const DecisionsBody = Type.Object({
  decisions: Type.Optional(Type.Array(Decision, { minItems: 1, maxItems: 1000, description: 'Decisions on named pending calls (the others stay pending)' })),
  approveAll: Type.Optional(Type.Literal(true, { description: 'Approve every pending call (of forTool only, when given) instead of naming them' })),
  forTool: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'With approveAll: only this tool\'s pending calls (others stay pending)' })),
  maxCalls: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'With approveAll and forTool: also approves up to this many further calls of that tool in this run, without waiting again' }))
}, { $id: 'ApprovalDecisions', additionalProperties: false, description: 'Either `decisions`, or `approveAll: true` (with `forTool` and `maxCalls` optionally)' })
type DecisionsBodyType = Static<typeof DecisionsBody>

/** The body's form, checked: one of the two, and the fields that go with it. */
function decisionRequestOf (body: DecisionsBodyType): DecisionRequest {
  const bad = (detail: string): ServiceError => new ServiceError('BAD_REQUEST', { detail })
  if (body.decisions !== undefined && body.approveAll !== undefined) throw bad('body has both decisions and approveAll: send one of them')
  if (body.decisions !== undefined) {
    if (body.forTool !== undefined || body.maxCalls !== undefined) throw bad('body/forTool and body/maxCalls go with approveAll, not with decisions')
    return { decisions: body.decisions }
  }
  if (body.approveAll === undefined) throw bad('body needs decisions: [{callId, approve, reason?}] or approveAll: true')
  if (body.maxCalls !== undefined && body.forTool === undefined) throw bad('body/maxCalls needs forTool: the tool whose further calls it approves')
  return { approveAll: true, ...(body.forTool !== undefined ? { forTool: body.forTool } : {}), ...(body.maxCalls !== undefined ? { maxCalls: body.maxCalls } : {}) }
}

const ExecutionPage = Type.Object({ executions: Type.Array(ExecutionView), nextBefore: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `before` for the next page; null on the last one' }) }, { $id: 'ExecutionPage' })
const ListQuery = Type.Object({
  status: Type.Optional(Status),
  from: Type.Optional(Type.String({ description: 'Only runs submitted at or after this ISO date (midnight UTC) or date-time' })),
  to: Type.Optional(Type.String({ description: 'Only runs submitted before this ISO date-time, or on or before this ISO date' })),
  code: Type.Optional(Type.String({ description: 'Only finished runs with this outcome: OK (succeeded) or an execution error code (TIMEOUT, CANCELLED...)' })),
  limit: Type.Optional(PageLimit({ max: 200, defaultLimit: PAGE_DEFAULT })),
  before: Type.Optional(BeforeCursor('nextBefore of the previous page (an execution id)'))
})
const EventsQuery = Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0, description: 'Resume after this seq (like Last-Event-ID)' })) })
const EventsHeaders = Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) })
const EventStream = {
  description: 'Events until `final`: text/event-stream (`id: <seq>` then `data: <event>`), or one JSON event per line with Accept: application/x-ndjson',
  content: EVENT_STREAM_CONTENT
}

const executionsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Per instance, like the streams themselves.
  const openStreams = new OpenStreams()
  const notFound = (): Error => new ServiceError('NOT_FOUND', { what: 'Execution not found' })
  /** The execution `/:id` names, lower case; a 404 when it is no UUID, a 400 for another bad part. */
  const executionIdOf = (request: { params: { id: string }, validationError?: FastifyRequest['validationError'] }): string => {
    const invalid = request.validationError
    if (invalid !== undefined) throw invalid.validationContext === 'params' ? notFound() : invalid
    return request.params.id.toLowerCase()
  }

  fastify.post('/executions', {
    schema: operation('executions', 'submitExecution', 'Queue a run', 'Queues the script and answers at once with its execution id: follow it with streamExecutionEvents, read its result with getExecution, stop it with cancelExecution. The same Idempotency-Key from the same tenant within 24 h answers the first execution again.', {
      body: ExecutionRequestBodySchema,
      headers: SubmitHeaders,
      response: {
        202: json('Queued', Submitted, { location: Type.String({ description: 'The execution: /api/executions/{executionId}' }), ...rl }),
        ...errors([400, 401]),
        ...errors([422], { 422: 'The Idempotency-Key was used with a different body in the last 24 hours (IDEMPOTENCY_KEY_REUSED): send a new key' }),
        413: json('The script is over the tier\'s maxCodeSizeKB (CODE_TOO_LARGE), or the body over BODY_LIMIT_BYTES (BODY_TOO_LARGE)', RefusalBodySchema),
        429: json('Over the per-minute rate limit, the daily execution or CPU quota (EXECUTION_QUOTA_EXCEEDED, CPU_QUOTA_EXCEEDED), a per-user limit (USER_QUOTA_EXCEEDED) or the queue bound: retry after Retry-After seconds', RefusalBodySchema, { ...RETRY_AFTER, ...rl }),
        ...errors([503])
      }
    })
  }, async (request, reply) => {
    const outcome = await fastify.executions.submit(request.tenant, request.body, request.headers['idempotency-key'])
    if (!outcome.accepted && 'reused' in outcome) throw new ServiceError('IDEMPOTENCY_KEY_REUSED', {})
    if (!outcome.accepted) {
      // Counted, logged and audited by the execution hooks, like every refusal.
      const refusal = refusalAnswer(outcome.refusal)
      if (refusal.retryAfterSeconds !== undefined) reply.header('retry-after', String(refusal.retryAfterSeconds))
      return await reply.code(refusal.status).send(refusal.body)
    }
    reply.header('location', `/api/executions/${outcome.executionId}`)
    return await reply.code(202).send({ executionId: outcome.executionId, status: outcome.status })
  })

  fastify.get('/executions', {
    schema: operation('executions', 'listExecutions', 'List executions', 'The caller\'s tenant\'s queued runs, newest first, a page at a time (pass `nextBefore` as `before`), optionally filtered by status, submission date range (`from`, `to`) and outcome (`code`).', {
      querystring: ListQuery,
      response: { 200: json('A page of executions, newest first', ExecutionPage, rl), ...errors([400, 401, 429, 503]) }
    })
  }, async (request) => {
    // The schema refuses a malformed before or limit with 400 (a cursor that is no UUID
    // used to read as an empty page, which looks like the end of the list); status, from, to
    // and code are checked with messages that list what is allowed.
    const filter = listFilterOf(request.query)
    return await fastify.executions.list(request.tenant.tenantId, { ...filter, ...pageAsked(request.query, PAGE_DEFAULT) })
  })

  fastify.get('/executions/:id', {
    // An id that is no UUID names no execution: the schema checks it, and the answer is a 404.
    attachValidation: true,
    schema: operation('executions', 'getExecution', 'Get an execution', 'An execution\'s status, and its result once finished.', {
      params: ExecutionIdParams,
      response: { 200: json('The execution', ExecutionView, rl), ...errors([401, 404, 429, 503], { 404: NOT_FOUND }) }
    })
  }, async (request) => {
    const view = await fastify.executions.get(request.tenant.tenantId, executionIdOf(request))
    if (view === undefined) throw notFound()
    return view
  })

  fastify.get('/executions/:id/events', {
    // An id that is no UUID names no execution: the schema checks it, and the answer is a 404.
    attachValidation: true,
    schema: operation('executions', 'streamExecutionEvents', 'Follow an execution\'s events', 'The execution\'s ExecutionEvents, from the first or after Last-Event-ID / `after`, live until `final`. Error answers (401, 404, 429, 503) are JSON ErrorBody, whatever Accept asked for.', {
      params: ExecutionIdParams,
      querystring: EventsQuery,
      headers: EventsHeaders,
      response: {
        200: { ...EventStream, headers: rl },
        ...errors([400, 401, 404], { 404: NOT_FOUND }),
        429: json('Over the per-minute rate limit (Retry-After), or the tenant holds its limit of open event streams on this instance (`limit`)', RefusalBodySchema, { ...RETRY_AFTER, ...rl }),
        ...errors([503])
      }
    })
  }, async (request, reply) => {
    const executionId = executionIdOf(request)
    const { tenantId } = request.tenant
    const limit = eventStreamLimit(request.tenant.quotas)
    const release = openStreams.tryOpen(tenantId, limit)
    if (release === undefined) {
      return await reply.code(429).send({ error: 'Too many open event streams', code: 'RATE_LIMITED', message: `This tenant holds ${limit} event streams open on this instance, its limit; close one first`, limit })
    }
    // Also when the answer is a 404 or a 503: the response's end releases it.
    reply.raw.on('close', release)
    const lastEventId = request.headers['last-event-id']
    const after = request.query.after ?? (lastEventId === undefined ? 0 : Number(lastEventId))
    const log = fastify.executionEvents
    // Listened for before anything is awaited: a client gone meanwhile stops the watch too.
    // (The writer stops its heartbeats then too, also after a 404.)
    const format = eventFormat(request.headers.accept) ?? 'sse'
    const writer = new EventWriter(format, after, reply.raw.socket)
    const left = new AbortController()
    reply.raw.on('close', () => { left.abort(); writer.end() })
    // A watch from the start of a live stream that names this tenant as its owner needs no
    // database read: the stream holds every event until `final`. Its first read goes alongside
    // the owner's (nothing is sent before the owner is known). Otherwise (a resume, a stream gone
    // or without owner) the row decides: 404 for another tenant, and whether the run is over.
    let events: AsyncGenerator<StreamEvent> | undefined
    try {
      if (after === 0) events = await followIfAllowed(log, executionId, left.signal, async () => await log.ownerOf(executionId) === tenantId)
      if (events === undefined) {
        const view = await fastify.executions.get(tenantId, executionId)
        if (view === undefined) throw notFound()
        events = follow(log, executionId, after, left.signal, view.status !== 'queued' && view.status !== 'running' && view.status !== 'awaiting_approval')
      }
    } catch (err) {
      // Not streaming after all (404, or a store that does not answer): nothing is left running.
      left.abort()
      writer.end()
      throw err
    }
    const stream = events
    void (async () => {
      try {
        for await (const event of stream) writer.write(event)
      } catch (err) {
        request.log.warn({ err, executionId }, 'event stream failed')
      } finally {
        writer.end()
      }
    })()
    return await reply.code(200).header('content-type', CONTENT_TYPES[format]).header('cache-control', 'no-cache').header('x-accel-buffering', 'no').send(writer.body as never)
  })

  fastify.post('/executions/:id/approvals', {
    // An id that is no UUID names no execution: the schema checks it, and the answer is a 404.
    attachValidation: true,
    schema: operation('executions', 'decideApprovals', 'Decide on a waiting run\'s tool calls', 'Approves or rejects the calls an execution awaiting_approval waits on (their ids come in its approval_required events). Once none is pending the run starts again and replays what it did: approved calls run, rejected ones throw APPROVAL_REJECTED in the script. Needs the approvals:decide permission; each decision is audited with the token\'s userId.', {
      params: ExecutionIdParams,
      body: DecisionsBody,
      response: {
        200: json('Decided: the execution (queued again when nothing is pending any more)', Type.Object({ execution: ExecutionView }, { $id: 'DecidedExecution' }), rl),
        ...errors([400, 401], { 400: 'The body is neither form (or both), names a call twice, or has maxCalls without forTool (BAD_REQUEST)' }),
        ...errors([403], { 403: 'The token lacks the approvals:decide permission (FORBIDDEN)' }),
        ...errors([404, 409, 429, 503], { 404: NOT_FOUND, 409: 'Nothing to decide: the execution is not awaiting_approval, or a callId is not one of its pending calls (APPROVAL_NOT_PENDING)' })
      }
    })
  }, async (request) => {
    const invalid = request.validationError
    if (invalid !== undefined && invalid.validationContext !== 'params') throw invalid
    if (!request.tenant.permissions.includes(DECIDE_PERMISSION)) throw new ServiceError('FORBIDDEN', { reason: `deciding on approvals needs the ${DECIDE_PERMISSION} permission; ask for a token that carries it` })
    const execution = await fastify.executions.decide(request.tenant, executionIdOf(request), decisionRequestOf(request.body))
    if (execution === undefined) throw notFound()
    return { execution }
  })

  fastify.delete('/executions/:id', {
    // An id that is no UUID names no execution: the schema checks it, and the answer is a 404.
    attachValidation: true,
    schema: operation('executions', 'cancelExecution', 'Cancel an execution', 'Cancels a queued or running execution: it ends within 100 ms with the CANCELLED error.', {
      params: ExecutionIdParams,
      response: {
        202: json('Cancelling', Type.Object({ executionId: Type.String({ format: 'uuid' }) }, { $id: 'CancelledExecution' }), rl),
        ...errors([401, 404, 409, 429, 503], { 404: NOT_FOUND, 409: 'The execution has already finished (EXECUTION_FINISHED)' })
      }
    })
  }, async (request, reply) => {
    const executionId = executionIdOf(request)
    const outcome = await fastify.executions.cancel(request.tenant.tenantId, request.tenant.userId, executionId)
    if (outcome === 'not-found') throw notFound()
    if (outcome === 'finished') return await reply.code(409).send({ error: 'Execution already finished', code: 'EXECUTION_FINISHED' })
    return await reply.code(202).send({ executionId })
  })
}

export default executionsRoutes
