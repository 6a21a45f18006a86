// Execution events on Redis Streams: one capped, expiring stream per execution. A Lua script
// numbers, appends and announces each event atomically, so events from several instances (the
// API's `queued`, the worker's run, a cancel's `final`) share one gapless sequence.
import { randomUUID } from 'node:crypto'
import type { ChainableCommander } from 'ioredis'
import { duplicateRedis, openRedis, type RedisClient } from '../store/redis-connection.ts'
import { EVENTS_TTL_MS, MAX_EVENTS_PER_EXECUTION, type EventLog, type StreamEvent } from './event-log.ts'
import { EventWatchers } from './event-watchers.ts'
import { eventKeys } from './execution-keys.ts'

const CHANNEL = 'tenant-enclave:execution-events'
const RECENT_APPENDS = 64
/** How much of a stream's ttl may go before an event (other than `final`) sets it again. */
const EXPIRY_SLACK_MS = 60_000

// KEYS: stream, counter, owner, appends. ARGV: type, data JSON, at, maxlen, ttl ms, channel,
// execution id, owner ('' = unchanged), append id.
// ioredis sends a command again after a reconnect when its reply was lost with the connection,
// though Redis may have run it: each append carries an id, and one already seen is not appended
// twice (its event is answered again, from the stream while it is there).
// Only the last RECENT_APPENDS ids are kept (with '#seq' → id to find the one to forget): the
// stream is capped, and a record of every append was not (a run logging empty lines grew it by
// about 90 bytes a line for an hour). A resent append is its writer's latest, and a run's events
// are appended one after another, so the few appends of other writers (the submission's
// `queued`, a cancel's or a lost-run check's `final`) are all that can come in between.
// A stream has one `final`: a second one (a lost-run check racing the run's own end) is not
// appended, and the first is answered instead, so every writer learns which result stands.
// The four keys' expiry is set again (to the ttl) when keys may be new (the first two events:
// INCR and HSET make them without one), with `final` (a stream lives its ttl after its end),
// with the owner (SET drops an expiry), when a waiting run's keep() left it longer, and once
// EXPIRY_SLACK_MS of it has gone; between those an event leaves it as it is (one PTTL instead of
// four PEXPIREs: eight for each tool call, whose call and result are two events).
// A stream starts with `queued`: the submission appends it alongside adding the job, so should the
// run's first event land first, `queued` is written before it (seq 1), and the submission's own
// append then answers that one (setting the owner).
const APPEND = `
local function appended (seq)
  local entries = redis.call('XRANGE', KEYS[1], seq .. '-1', seq .. '-1')
  if entries[1] then return entries[1][2][2] end
end
local done = redis.call('HGET', KEYS[4], ARGV[9])
if done then
  return appended(done) or ('{"seq":' .. done .. ',"type":"' .. ARGV[1] .. '","at":"' .. ARGV[3] .. '","data":' .. ARGV[2] .. '}')
end
local final = ARGV[1] == 'final' and redis.call('HGET', KEYS[4], 'final')
if final then
  local event = appended(final)
  if event then return event end
end
if ARGV[8] ~= '' then redis.call('SET', KEYS[3], ARGV[8]) end
if ARGV[1] == 'queued' and redis.call('EXISTS', KEYS[2]) == 1 then
  local event = appended(1)
  if event then
    redis.call('HSET', KEYS[4], ARGV[9], 1)
    return event
  end
end
local seq = redis.call('INCR', KEYS[2])
if seq == 1 and ARGV[1] ~= 'queued' then
  local queued = '{"seq":1,"type":"queued","at":"' .. ARGV[3] .. '","data":{}}'
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], '1-1', 'e', queued)
  redis.call('PUBLISH', ARGV[6], ARGV[7] .. ' ' .. queued)
  seq = redis.call('INCR', KEYS[2])
end
redis.call('HSET', KEYS[4], ARGV[9], seq, '#' .. seq, ARGV[9])
local old = seq - ${RECENT_APPENDS}
if old > 0 then
  local oldId = redis.call('HGET', KEYS[4], '#' .. old)
  if oldId then redis.call('HDEL', KEYS[4], oldId, '#' .. old) end
end
if ARGV[1] == 'final' then redis.call('HSET', KEYS[4], 'final', seq) end
local event = '{"seq":' .. seq .. ',"type":"' .. ARGV[1] .. '","at":"' .. ARGV[3] .. '","data":' .. ARGV[2] .. '}'
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], seq .. '-1', 'e', event)
local ttl = tonumber(ARGV[5])
local left = redis.call('PTTL', KEYS[1])
if seq <= 2 or ARGV[1] == 'final' or ARGV[8] ~= '' or left > ttl or left < ttl - ${EXPIRY_SLACK_MS} then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], ARGV[7] .. ' ' .. event)
return event`

interface Scripts {
  executionEventAppend: (stream: string, counter: string, owner: string, appends: string, type: string, data: string, at: string, maxlen: number, ttlMs: number, channel: string, id: string, ownerValue: string, appendId: string) => Promise<string>
}

// The four keys of one execution share its hash tag (execution-keys.ts): one cluster slot.
const streamKey = (id: string): string => eventKeys(id).stream
const ownerKey = (id: string): string => eventKeys(id).owner
const appendsKey = (id: string): string => eventKeys(id).appends

export function createRedisEventLog (url: string): EventLog {
  const client = openRedis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: false })
  client.on('error', () => {})
  client.defineCommand('executionEventAppend', { numberOfKeys: 4, lua: APPEND })
  const scripts = client as unknown as Scripts
  const watchers = new EventWatchers()
  let subscriber: RedisClient | undefined

  // Reads of one execution asked for in the same turn leave together, in one pipeline (its keys
  // share a slot, so a cluster takes it too): a stream's first read and its owner's check
  // (followIfAllowed asks for both at once) cost one round trip, not two.
  interface Queued { add: (pipeline: ChainableCommander) => void, alone: () => Promise<unknown>, settle: (err: Error | null, value: unknown) => void }
  const turn = new Map<string, Queued[]>()
  const send = (executionId: string, reads: Queued[]): void => {
    turn.delete(executionId)
    if (reads.length === 1) {
      const [only] = reads as [Queued]
      only.alone().then((value) => { only.settle(null, value) }, (err: Error) => { only.settle(err, undefined) })
      return
    }
    const pipeline = client.pipeline()
    for (const read of reads) read.add(pipeline)
    pipeline.exec().then((replies) => {
      reads.forEach((read, i) => {
        const [err, value] = replies?.[i] ?? [new Error('Redis answered none of the reads sent together'), undefined]
        read.settle(err, value)
      })
    }, (err: Error) => { for (const read of reads) read.settle(err, undefined) })
  }
  const inTurn = async (executionId: string, add: Queued['add'], alone: Queued['alone']): Promise<unknown> => await new Promise((resolve, reject) => {
    let reads = turn.get(executionId)
    if (reads === undefined) {
      const queued: Queued[] = []
      reads = queued
      turn.set(executionId, queued)
      queueMicrotask(() => { send(executionId, queued) })
    }
    reads.push({ add, alone, settle: (err, value) => { if (err !== null) reject(err); else resolve(value) } })
  })

  const subscribe = (): void => {
    if (subscriber !== undefined) return
    subscriber = duplicateRedis(client)
    subscriber.on('error', () => {})
    subscriber.on('message', (_channel: string, message: string) => {
      const space = message.indexOf(' ')
      const executionId = message.slice(0, space)
      if (!watchers.has(executionId)) return
      let event: StreamEvent
      try { event = JSON.parse(message.slice(space + 1)) as StreamEvent } catch { return }
      watchers.notify(executionId, event)
    })
    subscriber.subscribe(CHANNEL).catch(() => {})
  }

  return {
    async append (executionId, type, data, owner) {
      const keys = eventKeys(executionId)
      const json = await scripts.executionEventAppend(keys.stream, keys.counter, keys.owner, keys.appends, type, JSON.stringify(data), new Date().toISOString(), MAX_EVENTS_PER_EXECUTION, EVENTS_TTL_MS, CHANNEL, executionId, owner ?? '', randomUUID())
      return JSON.parse(json) as StreamEvent
    },
    async keep (executionId, ttlMs) {
      // The four keys share one slot; each PEXPIRE is one key, so a cluster takes them as they come.
      await Promise.all(Object.values(eventKeys(executionId)).map(async (key) => await client.pexpire(key, ttlMs)))
    },
    async ownerOf (executionId) {
      const key = ownerKey(executionId)
      const owner = await inTurn(executionId, (pipeline) => pipeline.get(key), async () => await client.get(key)) as string | null
      return owner ?? undefined
    },
    async finalOf (executionId) {
      const seq = await client.hget(appendsKey(executionId), 'final')
      if (seq === null) return undefined
      const [entry] = await client.xrange(streamKey(executionId), `${seq}-1`, `${seq}-1`)
      return entry === undefined ? undefined : JSON.parse(entry[1][1] ?? 'null') as StreamEvent
    },
    async read (executionId, after, limit) {
      const key = streamKey(executionId)
      const entries = await inTurn(executionId, (pipeline) => pipeline.xrange(key, `${after + 1}-0`, '+', 'COUNT', limit), async () => await client.xrange(key, `${after + 1}-0`, '+', 'COUNT', limit)) as Array<[string, string[]]>
      return entries.map(([, fields]) => JSON.parse(fields[1] ?? 'null') as StreamEvent)
    },
    watch (executionId, onEvent) {
      subscribe()
      return watchers.add(executionId, onEvent)
    },
    async close () {
      watchers.clear()
      // disconnect, not quit: a QUIT would wait for a Redis that may be gone.
      subscriber?.disconnect()
      client.disconnect()
    }
  }
}
