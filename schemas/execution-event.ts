import { Type, type Static, type TSchema } from 'typebox'
import { ExecutionResultSchema, LogEntrySchema } from './execution-result.ts'

// The events of one execution as GET /api/executions/:id/events and streaming /api/execute send
// them: numbered from 1 without gaps, so a client resumes after the last seq it saw.

export const EVENT_TYPES = ['queued', 'started', 'log', 'tool_call', 'tool_result', 'approval_required', 'approval_decided', 'heartbeat', 'final'] as const
export type EventType = typeof EVENT_TYPES[number]

const seq = Type.Integer({ minimum: 0, description: 'Position in the execution\'s stream, from 1; a heartbeat repeats the last seq sent' })
const at = Type.String({ format: 'date-time' })

/** Any event, as the service stores and forwards it without looking into `data`. */
export const StreamEventSchema = Type.Object({
  seq,
  type: Type.Enum(EVENT_TYPES),
  at,
  data: Type.Record(Type.String(), Type.Unknown(), {
    description: 'log {level, message}; tool_call {index, tool}; tool_result {index, code, durationMs}; approval_required {callId, tool, args, position}; approval_decided {callId, approve, by}; final {result}; others {}'
  })
})
export type StreamEvent = Static<typeof StreamEventSchema>

// The same events told apart by `type`, as clients read them: each type's `data` has its own
// named shape, so a client's `switch (event.type)` knows what `data` holds.

// queued, started and heartbeat carry nothing. (No $id: the serializer's Ajv refuses one $id at
// several places of one schema when the copies differ, as empty objects do once it has seen them.)
const NoData = Type.Object({})
export const ToolCallEventDataSchema = Type.Object({
  index: Type.Integer({ minimum: 0, description: 'Order of the call in its run (0-based)' }),
  tool: Type.String()
}, { $id: 'ToolCallEventData' })
export const ToolResultEventDataSchema = Type.Object({
  index: Type.Integer({ minimum: 0 }),
  code: Type.String({ description: 'OK or the error code the script saw' }),
  durationMs: Type.Number()
}, { $id: 'ToolResultEventData' })
export const ApprovalRequiredEventDataSchema = Type.Object({
  callId: Type.String({ description: '`call-<position>`: the id a decision names (POST /api/executions/:id/approvals)' }),
  tool: Type.String(),
  args: Type.Unknown({ description: 'The call\'s arguments, as the script passed them' }),
  position: Type.Integer({ minimum: 0, description: 'Order of the call among all the run\'s tool calls (0-based), replayed ones included' })
}, { $id: 'ApprovalRequiredEventData' })
export const ApprovalDecidedEventDataSchema = Type.Object({
  callId: Type.String(),
  approve: Type.Boolean(),
  by: Type.String({ description: 'The deciding token\'s userId' })
}, { $id: 'ApprovalDecidedEventData' })
export const FinalEventDataSchema = Type.Object({ result: ExecutionResultSchema }, { $id: 'FinalEventData' })

const event = <K extends EventType, D extends TSchema>(type: K, name: string, data: D, description: string) =>
  Type.Object({ seq, type: Type.Literal(type), at, data }, { $id: name, description })

export const ExecutionEventSchema = Type.Union([
  event('queued', 'QueuedEvent', NoData, 'The execution is queued (POST /api/executions)'),
  event('started', 'StartedEvent', NoData, 'The run began in an isolate'),
  event('log', 'LogEvent', LogEntrySchema, 'The script called console'),
  event('tool_call', 'ToolCallEvent', ToolCallEventDataSchema, 'The script called a tool'),
  event('tool_result', 'ToolResultEvent', ToolResultEventDataSchema, 'A tool call ended'),
  event('approval_required', 'ApprovalRequiredEvent', ApprovalRequiredEventDataSchema, 'A gated tool call waits for a decision; the run waits (awaiting_approval) without an isolate'),
  event('approval_decided', 'ApprovalDecidedEvent', ApprovalDecidedEventDataSchema, 'A person decided on a pending call (POST /api/executions/:id/approvals)'),
  event('heartbeat', 'HeartbeatEvent', NoData, 'Nothing happened for a while; keeps proxies from closing the stream'),
  event('final', 'FinalEvent', FinalEventDataSchema, 'The last event: the run\'s result')
], {
  $id: 'ExecutionEvent',
  description: 'One event of an execution. As text/event-stream each is `id: <seq>` then `data: <event JSON>`; as application/x-ndjson one JSON event per line. The stream ends after `final`.'
})
export type ExecutionEvent = Static<typeof ExecutionEventSchema>

/**
 * The `content` of a response that streams events, in either format a client may ask for. The
 * routes hold StreamEventSchema (Fastify compiles a serializer per media type, and the union's
 * shared `$id`s trip its Ajv; a stream is never serialised by it anyway); the OpenAPI document
 * shows ExecutionEventSchema in its place (plugins/swagger.ts).
 */
export const EVENT_STREAM_CONTENT = {
  'text/event-stream': { schema: StreamEventSchema },
  'application/x-ndjson': { schema: StreamEventSchema }
}
