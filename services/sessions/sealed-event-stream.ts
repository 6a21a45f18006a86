// The event stream of a run over an encrypted session: what EventWriter sends in the clear for
// streaming POST /api/execute, but every event (heartbeats included) sealed as one server frame.
import { PassThrough } from 'node:stream'
import type { StreamEvent } from '../../schemas/execution-event.ts'
import { HEARTBEAT_MS, type EventFormat } from '../executions/event-writer.ts'
import type { Frame } from './key-schedule.ts'

/** How a stream ends when its session expires: the last frame's sealing, and the run's result then. */
export interface StreamEnding {
  sealLast: (event: StreamEvent) => Promise<Frame>
  /** Whether a sealing error means the session expired. */
  expired: (err: unknown) => boolean
  result: () => Record<string, unknown>
}

/**
 * The response body of a sealed stream. Each event becomes `{frame}`: one SSE event (`data:`
 * only; a POST cannot be resumed, so no `id`) or one NDJSON line. Sealing is asynchronous (a
 * stream may have to reserve more server counters), so events are sealed and written strictly in
 * the order `write` was called; the counters increase in that same order.
 *
 * Heartbeats are sealed too, although the clear one carries nothing but timing (which the
 * encrypted stream shows anyway): so that every line of the stream authenticates, the client
 * never has to accept an unauthenticated line, and nothing in the stream tells a heartbeat from
 * a short event but its timing.
 *
 * If a frame cannot be sealed (the store is unreachable and no counter can be reserved), no
 * further frame can be sent safely: `onFailure` is told once and the stream ends without `final`,
 * which the client takes as a broken stream. A session that expires is no broken stream: with
 * `ending` the stream ends with a sealed `final` (its `result`), sealed with the counter the
 * stream keeps in hand, at the expiry (expire()) or when a frame finds the session gone.
 */
export class SealedEventStream {
  readonly body = new PassThrough()
  private readonly format: EventFormat
  private readonly seal: (event: StreamEvent) => Promise<Frame>
  private readonly onFailure: (err: unknown) => void
  private queue: Promise<void> = Promise.resolve()
  private lastSeq = 0
  /** The seq of the last event sent: an expiry's `final` follows it. */
  private sentSeq = 0
  private timer: NodeJS.Timeout | undefined
  private failed = false
  private ended = false
  private readonly ending: StreamEnding | undefined

  constructor (format: EventFormat, seal: (event: StreamEvent) => Promise<Frame>, onFailure: (err: unknown) => void, ending?: StreamEnding) {
    this.format = format
    this.seal = seal
    this.onFailure = onFailure
    this.ending = ending
    this.arm()
  }

  /** The session expired: the stream ends with its sealed `final` after what is already queued. */
  expire (): void {
    if (this.ended || this.failed) return
    this.queue = this.queue.then(async () => { await this.endExpired(undefined) })
  }

  private async endExpired (err: unknown): Promise<void> {
    if (this.failed || this.body.writableEnded || this.ending === undefined) return
    const event: StreamEvent = { seq: this.sentSeq + 1, type: 'final', at: new Date().toISOString(), data: { result: this.ending.result() } }
    let frame: Frame | undefined
    try {
      frame = await this.ending.sealLast(event)
    } catch {}
    this.failed = true
    clearTimeout(this.timer)
    this.onFailure(err ?? new Error('the session expired'))
    if (frame !== undefined) this.send(frame)
    this.body.end()
  }

  private send (frame: Frame): void {
    const json = JSON.stringify({ frame })
    this.body.write(this.format === 'ndjson' ? `${json}\n` : `data: ${json}\n\n`)
  }

  write (event: StreamEvent): void {
    if (this.ended || this.failed) return
    if (event.type !== 'heartbeat') this.lastSeq = event.seq
    this.queue = this.queue.then(async () => {
      if (this.failed || this.body.writableEnded) return
      let frame: Frame
      try {
        frame = await this.seal(event)
      } catch (err) {
        if (this.ending?.expired(err) === true) await this.endExpired(err)
        else this.fail(err)
        return
      }
      if (event.type !== 'heartbeat') this.sentSeq = event.seq
      this.send(frame)
    })
    this.arm()
  }

  /** Ends the body once every event already written has been sealed and sent. */
  async end (): Promise<void> {
    if (this.ended) return await this.queue
    this.ended = true
    clearTimeout(this.timer)
    await this.queue
    if (!this.body.writableEnded) this.body.end()
  }

  private fail (err: unknown): void {
    if (this.failed) return
    this.failed = true
    clearTimeout(this.timer)
    this.onFailure(err)
    this.body.end()
  }

  private arm (): void {
    clearTimeout(this.timer)
    if (this.ended || this.failed) return
    this.timer = setTimeout(() => {
      this.write({ seq: this.lastSeq, type: 'heartbeat', at: new Date().toISOString(), data: {} })
    }, HEARTBEAT_MS)
    this.timer.unref()
  }
}
