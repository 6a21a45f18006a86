// Sends execution events to an HTTP client as Server-Sent Events or NDJSON, with heartbeats
// during silence. Used by GET /api/executions/:id/events and streaming POST /api/execute.
import { PassThrough } from 'node:stream'
import type { Socket } from 'node:net'
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
 * `final` is the last event: the body ends with it. Given the response's socket, the writer holds
 * the socket's writes (cork) from `final` until the response has ended, so `final` and the end of
 * the response leave in one write: otherwise the end goes a turn later, alone, and a client that
 * stops reading at `final` (as it may) finds the response unfinished and must drop the connection
 * instead of reusing it.
 */
export class EventWriter {
  readonly body = new PassThrough()
  private readonly format: EventFormat
  private lastSeq: number
  private timer: NodeJS.Timeout | undefined
  private ended = false

  private readonly socket: Socket | null | undefined

  constructor (format: EventFormat, after = 0, socket?: Socket | null) {
    this.format = format
    this.lastSeq = after
    this.socket = socket
    this.arm()
  }

  write (event: StreamEvent): void {
    if (this.ended) return
    if (event.type !== 'heartbeat') this.lastSeq = event.seq
    const json = JSON.stringify(event)
    const chunk = this.format === 'ndjson' ? json + '\n' : event.type === 'heartbeat' ? `data: ${json}\n\n` : `id: ${event.seq}\ndata: ${json}\n\n`
    if (event.type !== 'final') {
      this.body.write(chunk)
      this.arm()
      return
    }
    const socket = this.socket
    // Not every response has a real socket (an injected request's has no cork).
    if (typeof socket?.cork === 'function' && !socket.destroyed) {
      socket.cork()
      // The body's 'end' reaches the response first (it was piped before), which ends it.
      let held = true
      const release = (): void => { if (held) { held = false; socket.uncork() } }
      this.body.once('end', release)
      this.body.once('close', release)
    }
    this.body.write(chunk)
    this.end()
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
