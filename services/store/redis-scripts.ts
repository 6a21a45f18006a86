// Lua scripts run atomically inside Redis, so N concurrent callers on any number of instances
// see one consistent order. Lease expiry uses the server's TIME: instance clocks never matter.
// (Redis >= 5 replicates script effects, so TIME before a write is allowed.)

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/** KEYS[1] counter; ARGV amount, limit, ttlMs → {allowed 0|1, count, pttl} */
export const CONSUME = `
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count + amount > limit then
  return {0, count, redis.call('PTTL', KEYS[1])}
end
count = redis.call('INCRBY', KEYS[1], amount)
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then
  -- first creation (or a key that somehow lost its TTL): the window starts now
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  pttl = tonumber(ARGV[3])
end
return {1, count, pttl}
`

/** KEYS[1] counter; ARGV amount, limit, ttlMs → {taken, count, pttl}: takes what is left, up to amount. */
export const CONSUME_UP_TO = `
local limit = tonumber(ARGV[2])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local taken = math.min(tonumber(ARGV[1]), limit - count)
if taken <= 0 then
  return {0, count, redis.call('PTTL', KEYS[1])}
end
count = redis.call('INCRBY', KEYS[1], taken)
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  pttl = tonumber(ARGV[3])
end
return {taken, count, pttl}
`

/** KEYS[1] counter; ARGV amount. Never below 0; an absent (expired) key stays absent. */
export const REFUND = `
local count = redis.call('GET', KEYS[1])
if not count then return 0 end
local left = tonumber(count) - tonumber(ARGV[1])
if left < 0 then left = 0 end
redis.call('SET', KEYS[1], left, 'KEEPTTL')
return left
`

// Leases: a sorted set, member = holderId, score = the lease's expiry (server ms).
// Expired members are purged before anything is counted; the key itself expires with its last lease.
const PURGE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
`
const EXPIRE_WITH_LAST_LEASE = `
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now)) end
`

/** KEYS[1] lease set; ARGV holderId, limit, leaseMs → 1 acquired | 0 full */
export const ACQUIRE_LEASE = `${NOW_MS}${PURGE}
local holder = ARGV[1]
-- the same holder re-acquiring refreshes its lease and still counts once
if not redis.call('ZSCORE', KEYS[1], holder) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), holder)
${EXPIRE_WITH_LAST_LEASE}
return 1
`

/** KEYS[1] lease set → live leases */
export const COUNT_LEASES = `${NOW_MS}${PURGE}
return redis.call('ZCARD', KEYS[1])
`

/**
 * Admission in one round trip. KEYS[1] lease set, KEYS[2] day counter; ARGV holderId, leaseLimit,
 * leaseMs, counterLimit, ttlMs → {1 admitted | 0 lease refused | 2 counter refused, count, pttl}.
 * A refusal takes nothing: the lease is added only once the counter has room.
 */
export const ADMIT = `${NOW_MS}${PURGE}
local holder = ARGV[1]
if not redis.call('ZSCORE', KEYS[1], holder) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return {0, 0, 0}
end
local count = tonumber(redis.call('GET', KEYS[2]) or '0')
if count + 1 > tonumber(ARGV[4]) then
  return {2, count, redis.call('PTTL', KEYS[2])}
end
count = redis.call('INCRBY', KEYS[2], 1)
local pttl = redis.call('PTTL', KEYS[2])
if pttl < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  pttl = tonumber(ARGV[5])
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), holder)
${EXPIRE_WITH_LAST_LEASE}
return {1, count, pttl}
`
