-- Puts a conversation loaded from the archive back into Redis, with the archive's seqs
-- (so every server's cached copy and the archive keep agreeing on positions), unless
-- the session exists already (another server restored it first, or it was created):
-- two servers restoring at once store nothing twice.
-- KEYS: list, hash, index, usage, v1log, v1meta, v1ids
-- ARGV: now_ms, ttl_secs (0 = never), session, created_at, updated_at, seq, trimmed,
--       title ('' for none), n, then n packed messages with their seqs, ascending and
--       contiguous, the last one at seq
-- Returns 1 when restored, 0 when the session was there already.
local k = session_keys()
local ttl = tonumber(ARGV[2])
local session = ARGV[3]
local n = tonumber(ARGV[9])
local FIRST = 10
if call('EXISTS', k.list, k.hash, k.v1log, k.v1meta) > 0 then
  return 0
end
local had_index = call('EXISTS', k.index) == 1
local had_usage = call('EXISTS', k.usage) == 1
local bytes, ids = 0, {}
for i = 0, n - 1, 256 do
  local part = {}
  for j = i, math.min(n - 1, i + 255) do
    local v = ARGV[FIRST + j]
    part[#part + 1] = v
    bytes = bytes + packed_bytes(v)
    ids[#ids + 1] = packed_id(v)
  end
  call('RPUSH', k.list, unpack(part))
end
remember(k.hash, ids)
-- Everything restored is in the archive already: arch = seq.
call('HSET', k.hash, 'created_at', ARGV[4], 'updated_at', ARGV[5], 'count', n, 'bytes', bytes,
  'seq', ARGV[6], 'trimmed', ARGV[7], 'auto', ARGV[8], 'arch', ARGV[6])
call('ZADD', k.index, ARGV[5], session)
call('HINCRBY', k.usage, 'bytes', bytes)
if ttl > 0 then
  call('EXPIRE', k.list, ttl)
  call('EXPIRE', k.hash, ttl)
  -- The user's index and usage total live at least as long as this session.
  for _, key in ipairs({k.index, k.usage}) do
    local p = call('PTTL', key)
    if (key == k.index and not had_index) or (key == k.usage and not had_usage) or (p >= 0 and p < ttl * 1000) then
      call('EXPIRE', key, ttl)
    end
  end
end
-- Read the hash last, so this connection tracks the session (tracking.rs).
call('EXISTS', k.hash)
return 1
