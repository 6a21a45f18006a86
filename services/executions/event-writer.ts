// Sends execution events to an HTTP client as Server-Sent Events or NDJSON, with heartbeats
// during silence. Used by GET /api/executions/:id/events and streaming POST /api/execute.
import { PassThrough } from 'node:stream'
import type { StreamEvent } from '../../schemas/execution-event.ts'

export const HEARTBEAT_MS = 5000
export type EventFormat = 'sse' | 'ndjson'

/** NDJSON when the client asks for it; SSE for text/event-stream. Undefined: the client wants neither. */
export function eventFormat (accept: string | undefined): EventFormat | undefined {
  if (accept === undefined) return undefined
  if (/application\/x-ndjson/i.test(accept)) return 'ndjson'
  if (/text\/event-stream/i.test(accept)) return 'sse'
  return undefined
}

export const CONTENT_TYPES: Record<EventFormat, string> = { sse: 'text/event-stream; charset=utf-8', ndjson: 'application/x-ndjson; charset=utf-8' }

/**
 * The response body of an event stream. `write` sends one event; heartbeats (the last seq sent,
 * type `heartbeat`, no SSE id so a resume point never moves) fill every HEARTBEAT_MS of silence.
 */
export class EventWriter {
  readonly body = new PassThrough()
  private readonly format: EventFormat
  private lastSeq: number
  private timer: NodeJS.Timeout | undefined
  private ended = false

  constructor (format: EventFormat, after = 0) {
    this.format = format
    this.lastSeq = after
    this.arm()
  }

  write (event: StreamEvent): void {
    if (this.ended) return
    if (event.type !== 'heartbeat') this.lastSeq = event.seq
    const json = JSON.stringify(event)
    if (this.format === 'ndjson') this.body.write(json + '\n')
    else this.body.write(event.type === 'heartbeat' ? `data: ${json}\n\n` : `id: ${event.seq}\ndata: ${json}\n\n`)
    this.arm()
  }

  end (): void {
    if (this.ended) return
    this.ended = true
    clearTimeout(this.timer)
    this.body.end()
  }

  private arm (): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.write({ seq: this.lastSeq, type: 'heartbeat', at: new Date().toISOString(), data: {} })
    }, HEARTBEAT_MS)
    this.timer.unref()
  }
}
