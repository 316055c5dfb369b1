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

local m = redis.call('HMGET', meta, 'created_at', 'count', 'bytes', 'seq', 'trimmed')
local created = m[1] or now
local count = tonumber(m[2]) or 0
local bytes = tonumber(m[3]) or 0
local seq = tonumber(m[4]) or 0
local trimmed = tonumber(m[5]) or 0

local out = {}
for i = 0, n - 1 do
  local b = 6 + i * 6
  if redis.call('SADD', ids, ARGV[b]) == 1 then
    seq = seq + 1
    redis.call('XADD', log, seq .. '-0', 'id', ARGV[b], 'role', ARGV[b + 1], 'content', ARGV[b + 2],
      'sources', ARGV[b + 3], 'ts', ARGV[b + 4], 'status', ARGV[b + 5])
    count = count + 1
    bytes = bytes + #ARGV[b + 2] + #ARGV[b + 3]
    out[i + 1] = seq
  else
    out[i + 1] = 0
  end
end

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
end
redis.call('HSET', meta, 'created_at', created, 'updated_at', now, 'count', count, 'bytes', bytes,
  'seq', seq, 'trimmed', trimmed)
redis.call('ZADD', index, now, session)

local pttl = -1
if ttl > 0 then
  redis.call('EXPIRE', log, ttl)
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', ids, ttl)
  -- Every session of the user follows the same TTL policy, and this one was touched
  -- last, so the index must live exactly as long as it does.
  redis.call('EXPIRE', index, ttl)
  pttl = ttl * 1000
else
  redis.call('PERSIST', log)
  redis.call('PERSIST', meta)
  redis.call('PERSIST', ids)
  redis.call('PERSIST', index)
end

-- A read of meta after the writes above keeps the session in this connection's
-- client-side-caching table (see tracking.rs): Redis then tells this client when
-- another one changes it.
redis.call('EXISTS', meta)

local result = {count, bytes, created, now, seq, trimmed, pttl}
for i = 1, n do
  result[7 + i] = out[i]
end
return result
