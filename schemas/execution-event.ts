import { Type, type Static } from 'typebox'

// The events of one execution as GET /api/executions/:id/events and streaming /api/execute send
// them: numbered from 1 without gaps, so a client resumes after the last seq it saw.

export const EVENT_TYPES = ['queued', 'started', 'log', 'tool_call', 'tool_result', 'heartbeat', 'final'] as const
export type EventType = typeof EVENT_TYPES[number]

export const StreamEventSchema = Type.Object({
  seq: Type.Integer({ minimum: 0, description: 'Position in the execution\'s stream, from 1; a heartbeat repeats the last seq sent' }),
  type: Type.Enum(EVENT_TYPES),
  at: Type.String({ format: 'date-time' }),
  data: Type.Record(Type.String(), Type.Unknown(), {
    description: 'log {level, message}; tool_call {index, tool}; tool_result {index, code, durationMs}; final {result}; others {}'
  })
})
export type StreamEvent = Static<typeof StreamEventSchema>
