// The numbered events of each execution: appended by whoever runs (or ends) it, read and followed
// by any instance. Redis Streams when REDIS_URL is set (redis-event-log.ts), else this process's memory.
import type { EventType, StreamEvent } from '../../schemas/execution-event.ts'
import { EventWatchers } from './event-watchers.ts'

export type { StreamEvent }

/** Events kept per execution; a run's logs and tool calls are bounded well below this. */
export const MAX_EVENTS_PER_EXECUTION = 10_000
/** A stream lives this long after its last event (DESIGN: at least an hour after the end). */
export const EVENTS_TTL_MS = 60 * 60_000

export interface EventLog {
  /**
   * Appends the next event (seq = last + 1, atomically across instances) and notifies watchers.
   * A stream has at most one `final`: appending another answers the first, unchanged.
   * A stream starts with `queued` (seq 1), once: another event appended first writes it before
   * itself, and a `queued` appended later answers that one (recording `owner`).
   * `owner` (the submitting tenant, given with `queued`) is kept with the stream for as long as it
   * lives, so a watcher's tenant can be checked without a database transaction (ownerOf).
   */
  append (executionId: string, type: Exclude<EventType, 'heartbeat'>, data: Record<string, unknown>, owner?: string): Promise<StreamEvent>
  /**
   * Keeps the stream `ttlMs` from now (a run waiting for approval outlives EVENTS_TTL_MS); the
   * next append sets it back to EVENTS_TTL_MS, so a waiting run's writers call it after theirs.
   */
  keep (executionId: string, ttlMs: number): Promise<void>
  /** The tenant recorded with the stream; undefined when none was (or the stream expired). */
  ownerOf (executionId: string): Promise<string | undefined>
  /** The stream's `final`, once there is one (and while the stream lives): the run is over. */
  finalOf (executionId: string): Promise<StreamEvent | undefined>
  /** Events with seq > after, in order, at most `limit`. */
  read (executionId: string, after: number, limit: number): Promise<StreamEvent[]>
  /** Calls onEvent for events appended from now on (maybe out of order or twice: follow() sorts it out). */
  watch (executionId: string, onEvent: (event: StreamEvent) => void): () => void
  close (): Promise<void>
}

const PAGE = 500
const RECHECK_MS = 1000

/** Pushed events held while the stream's reader is behind; past this, reads fill in. */
const PUSHED_MAX = PAGE

/**
 * Every event after `after` exactly once, in order, live, until `final` or the signal aborts.
 * It watches before it reads, so nothing appended in between is missed. A watched event that
 * continues the stream (the next seq) is yielded as it came, with no read: the notification
 * carries the event as the log stored it. One that skips ahead (a notification lost or
 * reordered) is filled from the log. `finished`: the run is over, so a stream with nothing more
 * to give (expired) ends once a re-check finds nothing new, instead of waiting for events that
 * will never come. A resume point at `final` ends the stream at once; one past it (a forged or
 * stale Last-Event-ID) ends it with that `final`, at once or when the run ends, so it never holds
 * one of its tenant's stream slots while waiting for a seq that will never come.
 */
export async function * follow (log: EventLog, executionId: string, after: number, signal: AbortSignal, finished = false): AsyncGenerator<StreamEvent> {
  let wake: (() => void) | undefined
  let last = after
  const pushed = new Map<number, StreamEvent>()
  // dropped: an event not held (the reader too far behind); fresh: something came since the
  // last read, so a read might fill what the pushed events leave out.
  let dropped = false
  let fresh = false
  // A `final` at or before the resume point: the stream ends with it (past the end) or without.
  let ended: { final: StreamEvent } | undefined
  const stop = log.watch(executionId, (event) => {
    if (event.type === 'final' && event.seq <= last) { ended = { final: event }; wake?.(); return }
    if (event.seq <= last) return
    if (pushed.size < PUSHED_MAX) pushed.set(event.seq, event)
    else dropped = true
    fresh = true
    wake?.()
  })
  const onAbort = (): void => { wake?.() }
  signal.addEventListener('abort', onAbort, { once: true })
  let quietChecks = 0
  let mustRead = true
  try {
    // Resumed at `final`: the stream is complete; past it: it ends with its `final`.
    const endedAt = async (): Promise<{ final: StreamEvent } | undefined> => {
      const final = await log.finalOf(executionId)
      return final !== undefined && final.seq <= after ? { final } : undefined
    }
    if (after > 0) ended ??= await endedAt()
    while (!signal.aborted) {
      if (ended !== undefined) {
        if (ended.final.seq < after) yield ended.final
        return
      }
      if (mustRead) {
        fresh = false
        dropped = false
        const events = await log.read(executionId, last, PAGE)
        for (const event of events) {
          if (event.seq <= last) continue
          last = event.seq
          yield event
          if (event.type === 'final') return
        }
        if (events.length === PAGE) continue
        // Nothing past a resume point: a `final` before it whose notice was lost ends the stream.
        if (events.length === 0 && last === after && after > 0 && quietChecks > 0) {
          ended = await endedAt()
          if (ended !== undefined) continue
        }
        if (events.length === 0 && quietChecks++ > 0 && finished) return
      }
      for (let next = pushed.get(last + 1); next !== undefined; next = pushed.get(last + 1)) {
        pushed.delete(next.seq)
        last = next.seq
        yield next
        if (next.type === 'final') return
      }
      for (const seq of pushed.keys()) if (seq <= last) pushed.delete(seq)
      // A gap (a notification lost, or an event not held): read, unless a read since the last
      // arrival already could not fill it; then the next arrival or the timer reads again.
      if ((pushed.size > 0 || dropped) && fresh) { mustRead = true; continue }
      fresh = false
      // Notifications are the fast path; the timer re-reads in case one was lost (a subscriber
      // still connecting, a reconnect), so a stream never hangs on a missed `final`.
      let timer: NodeJS.Timeout | undefined
      let timedOut = false
      await new Promise<void>((resolve) => {
        wake = resolve
        timer = setTimeout(() => { timedOut = true; resolve() }, RECHECK_MS)
        if (signal.aborted) resolve()
      })
      clearTimeout(timer)
      wake = undefined
      mustRead = timedOut
    }
  } finally {
    stop()
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * follow() from the start, begun (watching, then reading) while `allowed` is checked, so the
 * check costs no round trip of its own; nothing of the stream is handed out unless it passes.
 * Undefined when it does not, and the follow is stopped (also when the check throws).
 */
export async function followIfAllowed (log: EventLog, executionId: string, signal: AbortSignal, allowed: () => Promise<boolean>): Promise<AsyncGenerator<StreamEvent> | undefined> {
  const refused = new AbortController()
  const events = follow(log, executionId, 0, AbortSignal.any([signal, refused.signal]))
  const head = events.next()
  head.catch(() => {})
  let ok = false
  try {
    ok = await allowed()
  } finally {
    // return() as well as abort: a follow suspended at its first event would otherwise keep watching.
    if (!ok) { refused.abort(); events.return(undefined).catch(() => {}) }
  }
  if (!ok) return undefined
  return (async function * () {
    try {
      for (let next = await head; next.done !== true; next = await events.next()) yield next.value
    } finally {
      await events.return(undefined)
    }
  })()
}

interface MemoryStream { events: StreamEvent[], last: number, expiry: NodeJS.Timeout | undefined, owner: string | undefined, queued?: StreamEvent, final?: StreamEvent }

/** One process's event log (embedded mode): the same contract as Redis Streams. */
export function createMemoryEventLog (): EventLog {
  const streams = new Map<string, MemoryStream>()
  const watchers = new EventWatchers()
  const expireIn = (executionId: string, stream: MemoryStream, ttlMs: number): void => {
    clearTimeout(stream.expiry)
    stream.expiry = setTimeout(() => streams.delete(executionId), ttlMs)
    stream.expiry.unref()
  }
  return {
    async append (executionId, type, data, owner) {
      let stream = streams.get(executionId)
      if (stream === undefined) { stream = { events: [], last: 0, expiry: undefined, owner: undefined }; streams.set(executionId, stream) }
      if (owner !== undefined) stream.owner = owner
      if (type === 'final' && stream.final !== undefined) return stream.final
      // As on Redis: a stream starts with `queued`, whoever appends first.
      if (type === 'queued' && stream.queued !== undefined) return stream.queued
      const add = (type: Exclude<EventType, 'heartbeat'>, data: Record<string, unknown>): StreamEvent => {
        const event: StreamEvent = { seq: stream.last + 1, type, at: new Date().toISOString(), data }
        stream.last = event.seq
        stream.events.push(event)
        if (stream.events.length > MAX_EVENTS_PER_EXECUTION) stream.events.shift()
        watchers.notify(executionId, event)
        return event
      }
      if (stream.last === 0) stream.queued = add('queued', {})
      const event = type === 'queued' ? stream.queued! : add(type, data)
      if (type === 'final') stream.final = event
      expireIn(executionId, stream, EVENTS_TTL_MS)
      return event
    },
    async keep (executionId, ttlMs) {
      const stream = streams.get(executionId)
      if (stream !== undefined) expireIn(executionId, stream, ttlMs)
    },
    async ownerOf (executionId) {
      return streams.get(executionId)?.owner
    },
    async finalOf (executionId) {
      return streams.get(executionId)?.final
    },
    async read (executionId, after, limit) {
      const events = streams.get(executionId)?.events ?? []
      const out: StreamEvent[] = []
      for (const event of events) {
        if (event.seq > after) out.push(event)
        if (out.length >= limit) break
      }
      return out
    },
    watch (executionId, onEvent) {
      return watchers.add(executionId, onEvent)
    },
    async close () {
      for (const stream of streams.values()) clearTimeout(stream.expiry)
      streams.clear()
      watchers.clear()
    }
  }
}
