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
 * KEYS counters; ARGV amount, ttlMs, then each counter's limit → {taken, limitedBy (0-based, -1
 * none), pttl}: takes min(amount, the least room left) from every counter, or nothing.
 */
export const CONSUME_UP_TO_ALL = `
local taken = tonumber(ARGV[1])
local by = -1
for i = 1, #KEYS do
  local left = tonumber(ARGV[2 + i]) - tonumber(redis.call('GET', KEYS[i]) or '0')
  if left < taken then
    taken = left
    by = i - 1
  end
end
if taken <= 0 then
  return {0, by, redis.call('PTTL', KEYS[by + 1])}
end
local pttl = 0
for i = #KEYS, 1, -1 do
  redis.call('INCRBY', KEYS[i], taken)
  pttl = redis.call('PTTL', KEYS[i])
  if pttl < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    pttl = tonumber(ARGV[2])
  end
end
if by >= 0 then pttl = redis.call('PTTL', KEYS[by + 1]) end
return {taken, by, pttl}
`

/**
 * Admission in one round trip. KEYS[1] lease set, KEYS[2..] counters; ARGV holderId, leaseLimit,
 * leaseMs, ttlMs, then each counter's take and limit → {1 admitted | 0 lease refused | 2 counter
 * refused, count, pttl, index of the refusing counter (0-based)}. A counter refuses when
 * count + max(take, 1) > limit (take 0: a budget charged later, only checked here). A refusal
 * takes nothing: the counters move and the lease is added only once all of them have room.
 */
export const ADMIT = `${NOW_MS}${PURGE}
local holder = ARGV[1]
if not redis.call('ZSCORE', KEYS[1], holder) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return {0, 0, 0, 0}
end
local n = #KEYS - 1
for i = 1, n do
  local count = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
  if count + math.max(tonumber(ARGV[3 + 2 * i]), 1) > tonumber(ARGV[4 + 2 * i]) then
    return {2, count, redis.call('PTTL', KEYS[i + 1]), i - 1}
  end
end
local result = {1, 0, 0, 0}
for i = n, 1, -1 do
  local key = KEYS[i + 1]
  local take = tonumber(ARGV[3 + 2 * i])
  local count = tonumber(redis.call('GET', key) or '0')
  if take > 0 then count = redis.call('INCRBY', key, take) end
  local pttl = redis.call('PTTL', key)
  if take > 0 and pttl < 0 then
    redis.call('PEXPIRE', key, ARGV[4])
    pttl = tonumber(ARGV[4])
  end
  result = {1, count, pttl, 0}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), holder)
${EXPIRE_WITH_LAST_LEASE}
return result
`
