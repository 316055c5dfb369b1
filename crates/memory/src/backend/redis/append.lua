-- Append messages to one session, atomically and idempotently.
-- KEYS: log, meta, ids, index
-- ARGV: now_ms, ttl_secs (0 = never), max_messages (0 = unbounded), session, n,
--       refresh (1 = re-apply the TTL to every key; 0 = only when this append creates keys),
--       then 6 fields per message: id, role, content, sources, ts, status
-- Returns: {count, bytes, created_at, updated_at, seq, trimmed, pttl, seq_or_0 per message}
local call = redis.call
local log, meta, ids, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = ARGV[1]
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local session = ARGV[4]
local n = tonumber(ARGV[5])
local refresh = ARGV[6] == '1'

local m = call('HMGET', meta, 'created_at', 'count', 'bytes', 'seq', 'trimmed')
local created = m[1]
local count = tonumber(m[2]) or 0
local bytes = tonumber(m[3]) or 0
local seq = tonumber(m[4]) or 0
local trimmed = tonumber(m[5]) or 0
-- A new or empty session gets new keys, which must get the TTL (and the index entry).
if not created or count == 0 then
  refresh = true
end

local out = {}
for i = 0, n - 1 do
  local b = 7 + i * 6
  if call('SADD', ids, ARGV[b]) == 1 then
    seq = seq + 1
    call('XADD', log, seq .. '-0', 'id', ARGV[b], 'role', ARGV[b + 1], 'content', ARGV[b + 2],
      'sources', ARGV[b + 3], 'ts', ARGV[b + 4], 'status', ARGV[b + 5])
    count = count + 1
    bytes = bytes + #ARGV[b + 2] + #ARGV[b + 3]
    out[i + 1] = seq
  else
    out[i + 1] = 0
  end
end

local trimmed_now = false
if max > 0 and count > max then
  -- Trim the oldest entries and forget their ids, so the dedupe set stays as small as the log.
  local old = call('XRANGE', log, '-', '+', 'COUNT', count - max)
  for _, entry in ipairs(old) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      local f = fields[j]
      if f == 'id' then
        call('SREM', ids, fields[j + 1])
      elseif f == 'content' or f == 'sources' then
        bytes = bytes - #fields[j + 1]
      end
    end
    call('XDEL', log, entry[1])
    trimmed = tonumber(string.match(entry[1], '^(%d+)'))
    count = count - 1
  end
  trimmed_now = true
end
if not created then
  created = now
  call('HSET', meta, 'created_at', created, 'updated_at', now, 'count', count, 'bytes', bytes,
    'seq', seq, 'trimmed', trimmed)
elseif trimmed_now then
  call('HSET', meta, 'updated_at', now, 'count', count, 'bytes', bytes, 'seq', seq,
    'trimmed', trimmed)
else
  call('HSET', meta, 'updated_at', now, 'count', count, 'bytes', bytes, 'seq', seq)
end

-- The TTL slides: every key of the session gets it again. The caller asks for that at
-- least every tenth of the TTL rather than on every append (it saves five commands of
-- the twelve a turn costs), so a session lives 90% to 100% of the TTL after its last use.
local pttl = -2
if refresh then
  call('ZADD', index, now, session)
  if ttl > 0 then
    call('EXPIRE', log, ttl)
    call('EXPIRE', meta, ttl)
    call('EXPIRE', ids, ttl)
    -- Every session of the user follows the same TTL policy, and this one was touched
    -- last, so the index must live at least as long as it does.
    call('EXPIRE', index, ttl)
    pttl = ttl * 1000
  else
    call('PERSIST', log)
    call('PERSIST', meta)
    call('PERSIST', ids)
    call('PERSIST', index)
    pttl = -1
  end
end

-- A read of meta after the writes above keeps the session in this connection's
-- client-side-caching table (see tracking.rs): Redis then tells this client when
-- another one changes it.
if pttl == -2 then
  pttl = call('PTTL', meta)
else
  call('EXISTS', meta)
end

local result = {count, bytes, created, now, seq, trimmed, pttl}
for i = 1, n do
  result[7 + i] = out[i]
end
return result
