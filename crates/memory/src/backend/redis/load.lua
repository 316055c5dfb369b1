-- Read one session: its meta and every entry after a seq; refreshes the TTL of all its keys.
-- KEYS: log, meta, ids, index
-- ARGV: after_seq (-1 = no entries), ttl_secs (0 = never expire; -1 = leave TTLs alone)
-- Returns: false when the session does not exist, else
--          {count, bytes, created_at, updated_at, seq, trimmed, pttl, entries}
local log, meta, ids, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local after = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])

local m = redis.call('HMGET', meta, 'count', 'bytes', 'created_at', 'updated_at', 'seq', 'trimmed')
if not m[3] then
  return false
end
local pttl
if ttl > 0 then
  redis.call('EXPIRE', log, ttl)
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', ids, ttl)
  redis.call('EXPIRE', index, ttl)
  pttl = ttl * 1000
elseif ttl == 0 then
  redis.call('PERSIST', log)
  redis.call('PERSIST', meta)
  redis.call('PERSIST', ids)
  redis.call('PERSIST', index)
  pttl = -1
else
  pttl = redis.call('PTTL', meta)
end
local entries = {}
if after >= 0 and (tonumber(m[5]) or 0) > after then
  entries = redis.call('XRANGE', log, (after + 1) .. '-0', '+')
end
-- Read meta after the EXPIREs so the session stays tracked for this client (tracking.rs).
redis.call('EXISTS', meta)
return {m[1], m[2], m[3], m[4], m[5], m[6], pttl, entries}
