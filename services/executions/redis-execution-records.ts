// Queued runs' records on Redis (execution-records.ts has the contract): one hash per run, a
// sorted set per tenant of its runs not stored yet (for the list), one sorted set of when each
// unstored run is due to be stored (for the sweep), and a key per idempotency key. Each command
// or script touches the keys of one hash tag only (a run's, a tenant's), so Redis Cluster can
// place them; what spans two is sent side by side and undone as a whole when part of it fails.
import type { RedisClient } from '../store/redis-connection.ts'
import type { ExecutionStatus } from '../db/schema.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import { DUE_KEY, idempotencyKey, recordKey, unstoredKey } from './execution-keys.ts'
import { firstDue, IDEMPOTENCY_WINDOW_MS, RECORD_TTL_MS, STORE_GRACE_MS, STORED_RECORD_TTL_MS, type ExecutionRecords, type RunChange, type RunRecord } from './execution-records.ts'

// KEYS: record. ARGV: ttl ms, then field/value pairs. A new record whole, with its expiry.
const CREATE = `
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

// KEYS: record. ARGV: ttl ms, then field/value pairs. CREATE, only when there is no record.
const RESTORE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

// KEYS: record. ARGV: ttl ms, how many statuses follow, the statuses, then field/value pairs.
// The change applies only when the record's status is one of those given: the one who moves a
// run out of a status decides (a cancel of a queued run and the worker starting it).
const MOVE = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
local n = tonumber(ARGV[2])
local allowed = false
for i = 3, 2 + n do if ARGV[i] == status then allowed = true end end
if not allowed then return false end
redis.call('HSET', KEYS[1], unpack(ARGV, 3 + n))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])`

// KEYS: due. ARGV: now, limit, when each taken run is due again. Taking is atomic, so two sweeps
// do not take the same runs at once.
const TAKE_DUE = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids`

// KEYS: idempotency key. ARGV: execution id. Lets the key go only if it still names this run.
const RELEASE_KEY = `
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then redis.call('DEL', KEYS[1]) end
return 1`

interface Scripts {
  executionRecordCreate: (key: string, ttlMs: number, ...fields: string[]) => Promise<number>
  executionRecordRestore: (key: string, ttlMs: number, ...fields: string[]) => Promise<number>
  executionRecordMove: (key: string, ttlMs: number, count: number, ...rest: string[]) => Promise<string[] | null>
  executionRecordsTakeDue: (key: string, now: number, limit: number, later: number) => Promise<string[]>
  executionRecordReleaseKey: (key: string, executionId: string) => Promise<number>
}

/** A record's fields as the hash holds them (strings; the result as JSON). */
function fieldsOf (record: Partial<RunRecord>): string[] {
  const out: string[] = []
  for (const [name, value] of Object.entries(record)) {
    if (value === undefined) continue
    out.push(name, name === 'result' ? JSON.stringify(value) : String(value))
  }
  return out
}

function recordOf (hash: Record<string, string>): RunRecord | undefined {
  if (hash.status === undefined || hash.tenantId === undefined) return undefined
  const record: RunRecord = {
    executionId: hash.executionId!,
    tenantId: hash.tenantId,
    userId: hash.userId!,
    status: hash.status as ExecutionStatus,
    submittedAt: hash.submittedAt!,
    codeSha256: hash.codeSha256!,
    timeoutMs: Number(hash.timeoutMs)
  }
  if (hash.startedAt !== undefined) record.startedAt = hash.startedAt
  if (hash.finishedAt !== undefined) record.finishedAt = hash.finishedAt
  if (hash.result !== undefined) record.result = JSON.parse(hash.result) as ExecutionResult
  if (hash.idempotencyKey !== undefined) record.idempotencyKey = hash.idempotencyKey
  if (hash.requestSha256 !== undefined) record.requestSha256 = hash.requestSha256
  if (hash.starts !== undefined) record.starts = Number(hash.starts)
  if (hash.expiresAt !== undefined) record.expiresAt = hash.expiresAt
  return record
}

function pairsToHash (pairs: string[]): Record<string, string> {
  const hash: Record<string, string> = {}
  for (let i = 0; i + 1 < pairs.length; i += 2) hash[pairs[i]!] = pairs[i + 1]!
  return hash
}

/** A command (or one of the scripts above) and its arguments. */
type Call = [command: string, ...args: Array<string | number>]

/**
 * Commands that go together, each on keys of its own: on one server they leave in one write (a
 * pipeline, not a transaction: each succeeds or fails alone, as when sent side by side); on a
 * cluster, where their keys lie in several slots, side by side. Settled as Promise.allSettled is.
 */
async function together (redis: RedisClient, calls: Call[]): Promise<Array<PromiseSettledResult<unknown>>> {
  type Commands = Record<string, (...args: Array<string | number>) => unknown>
  if (redis.isCluster) return await Promise.allSettled(calls.map(async ([command, ...args]) => await (redis as unknown as Commands)[command]!(...args)))
  const pipeline = redis.pipeline()
  for (const [command, ...args] of calls) (pipeline as unknown as Commands)[command]!(...args)
  let replies: Array<[Error | null, unknown]> | null
  try {
    replies = await pipeline.exec()
  } catch (err) {
    return calls.map(() => ({ status: 'rejected', reason: err }))
  }
  return calls.map((_call, i) => {
    const [err, value] = replies?.[i] ?? [new Error('Redis answered none of the commands sent together'), undefined]
    return err === null ? { status: 'fulfilled', value } : { status: 'rejected', reason: err }
  })
}

/** Throws the first failure of commands sent together, as Promise.all would. */
function failedOf (outcomes: Array<PromiseSettledResult<unknown>>): void {
  const failed = outcomes.find((outcome) => outcome.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}

export function createRedisExecutionRecords (redis: RedisClient): ExecutionRecords {
  redis.defineCommand('executionRecordCreate', { numberOfKeys: 1, lua: CREATE })
  redis.defineCommand('executionRecordRestore', { numberOfKeys: 1, lua: RESTORE })
  redis.defineCommand('executionRecordMove', { numberOfKeys: 1, lua: MOVE })
  redis.defineCommand('executionRecordsTakeDue', { numberOfKeys: 1, lua: TAKE_DUE })
  redis.defineCommand('executionRecordReleaseKey', { numberOfKeys: 1, lua: RELEASE_KEY })
  const scripts = redis as unknown as Scripts
  const read = async (executionId: string): Promise<RunRecord | undefined> => recordOf(await redis.hgetall(recordKey(executionId)))

  const records: ExecutionRecords = {
    async accept (record) {
      if (record.idempotencyKey !== undefined) {
        const key = idempotencyKey(record.tenantId, record.idempotencyKey)
        const value = `${record.executionId} ${record.requestSha256 ?? ''}`
        if (await redis.set(key, value, 'PX', IDEMPOTENCY_WINDOW_MS, 'NX') === null) {
          const first = await redis.get(key)
          // Gone meanwhile (its submission failed, or it expired): this one may have it.
          if (first === null) return await records.accept(record)
          const [executionId = '', requestSha256 = ''] = first.split(' ')
          return { created: false, executionId, requestSha256: requestSha256 === '' ? undefined : requestSha256 }
        }
      }
      const kept = await together(redis, [
        ['executionRecordCreate', recordKey(record.executionId), RECORD_TTL_MS, ...fieldsOf(record)],
        ['zadd', unstoredKey(record.tenantId), Date.parse(record.submittedAt), record.executionId],
        ['zadd', DUE_KEY, firstDue(record), record.executionId]
      ])
      const failed = kept.find((outcome) => outcome.status === 'rejected')
      if (failed !== undefined) {
        await records.forget(record).catch(() => {})
        throw failed.reason
      }
      return { created: true }
    },
    get: read,
    async restore (record) {
      if (await scripts.executionRecordRestore(recordKey(record.executionId), RECORD_TTL_MS, ...fieldsOf(record)) !== 1) return false
      await Promise.all([
        redis.zadd(unstoredKey(record.tenantId), Date.parse(record.submittedAt), record.executionId),
        redis.zadd(DUE_KEY, firstDue(record), record.executionId)
      ])
      return true
    },
    async move (executionId, from, change: RunChange, ttlMs = RECORD_TTL_MS) {
      const pairs = await scripts.executionRecordMove(recordKey(executionId), ttlMs, from.length, ...from, ...fieldsOf(change))
      return pairs === null ? undefined : recordOf(pairsToHash(pairs))
    },
    async unstored (tenantId) {
      const ids = await redis.zrange(unstoredKey(tenantId), '0', '-1')
      const found = await Promise.all(ids.map(read))
      // A record that expired unstored leaves nothing to list: its id goes too.
      const gone = ids.filter((_id, i) => found[i] === undefined)
      if (gone.length > 0) await redis.zrem(unstoredKey(tenantId), ...gone)
      return found.filter((record) => record !== undefined)
    },
    async due (now, limit) {
      const ids = await scripts.executionRecordsTakeDue(DUE_KEY, now, limit, now + STORE_GRACE_MS)
      const found = await Promise.all(ids.map(read))
      const gone = ids.filter((_id, i) => found[i] === undefined)
      if (gone.length > 0) await redis.zrem(DUE_KEY, ...gone)
      return found.filter((record) => record !== undefined)
    },
    async dueAt (executionId, at) {
      await redis.zadd(DUE_KEY, 'XX', String(at), executionId)
    },
    async stored (record) {
      failedOf(await together(redis, [
        ['zrem', unstoredKey(record.tenantId), record.executionId],
        ['zrem', DUE_KEY, record.executionId],
        ['pexpire', recordKey(record.executionId), STORED_RECORD_TTL_MS]
      ]))
    },
    async forget (record) {
      failedOf(await together(redis, [
        ['del', recordKey(record.executionId)],
        ['zrem', unstoredKey(record.tenantId), record.executionId],
        ['zrem', DUE_KEY, record.executionId],
        ...(record.idempotencyKey === undefined ? [] : [['executionRecordReleaseKey', idempotencyKey(record.tenantId, record.idempotencyKey), record.executionId] satisfies Call])
      ]))
    }
  }
  return records
}
