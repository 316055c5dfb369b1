-- Append messages to one session, atomically and idempotently.
-- KEYS: log, meta, ids, index
-- ARGV: now_ms, ttl_secs (0 = never), max_messages (0 = unbounded), session, n,
--       then 6 fields per message: id, role, content, sources, ts, status
-- Returns: {count, bytes, created_at, updated_at, seq, trimmed, pttl, seq_or_0 per message}
local log, meta, ids, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = ARGV[1]
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local session = ARGV[4]
local n = tonumber(ARGV[5])

if redis.call('EXISTS', meta) == 0 then
  redis.call('HSET', meta, 'created_at', now, 'updated_at', now, 'count', 0, 'bytes', 0, 'seq', 0, 'trimmed', 0)
end
local seq = tonumber(redis.call('HGET', meta, 'seq')) or 0
local added, added_bytes = 0, 0
local out = {}
for i = 0, n - 1 do
  local b = 6 + i * 6
  if redis.call('SADD', ids, ARGV[b]) == 1 then
    seq = seq + 1
    redis.call('XADD', log, seq .. '-0', 'id', ARGV[b], 'role', ARGV[b + 1], 'content', ARGV[b + 2],
      'sources', ARGV[b + 3], 'ts', ARGV[b + 4], 'status', ARGV[b + 5])
    added = added + 1
    added_bytes = added_bytes + #ARGV[b + 2] + #ARGV[b + 3]
    out[i + 1] = seq
  else
    out[i + 1] = 0
  end
end

local count = tonumber(redis.call('HINCRBY', meta, 'count', added))
local bytes = tonumber(redis.call('HINCRBY', meta, 'bytes', added_bytes))
local trimmed = tonumber(redis.call('HGET', meta, 'trimmed')) or 0
if max > 0 and count > max then
  -- Trim the oldest entries and forget their ids, so the dedupe set stays as small as the log.
  local old = redis.call('XRANGE', log, '-', '+', 'COUNT', count - max)
  for _, entry in ipairs(old) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      local f = fields[j]
      if f == 'id' then
        redis.call('SREM', ids, fields[j + 1])
      elseif f == 'content' or f == 'sources' then
        bytes = bytes - #fields[j + 1]
      end
    end
    redis.call('XDEL', log, entry[1])
    trimmed = tonumber(string.match(entry[1], '^(%d+)'))
    count = count - 1
  end
  redis.call('HSET', meta, 'count', count, 'bytes', bytes, 'trimmed', trimmed)
end
redis.call('HSET', meta, 'seq', seq, 'updated_at', now)
redis.call('ZADD', index, now, session)

if ttl > 0 then
  redis.call('EXPIRE', log, ttl)
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', ids, ttl)
  -- The index lives as long as the longest-lived session it lists (sessions share one TTL policy).
  local index_ttl = redis.call('TTL', index)
  if index_ttl < ttl then
    redis.call('EXPIRE', index, ttl)
  end
else
  redis.call('PERSIST', log)
  redis.call('PERSIST', meta)
  redis.call('PERSIST', ids)
  redis.call('PERSIST', index)
end

local result = {count, bytes, redis.call('HGET', meta, 'created_at'), now, seq, trimmed, redis.call('PTTL', meta)}
for i = 1, n do
  result[7 + i] = out[i]
end
return result
