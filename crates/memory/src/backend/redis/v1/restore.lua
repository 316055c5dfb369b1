-- Puts a conversation loaded from the archive back into Redis, with the archive's seqs
-- (so every server's cached copy and the archive keep agreeing on positions), unless
-- the session exists already (another server restored it first, or it was created):
-- two servers restoring at once store nothing twice.
-- KEYS: log, meta, ids, index, usage
-- ARGV: now_ms, ttl_secs (0 = never), session, created_at, updated_at, seq, trimmed,
--       title ('' for none), n, then 7 fields per message: seq, id, role, content,
--       sources, ts, status (ascending seqs)
-- Returns 1 when restored, 0 when the session was there already.
local call = redis.call
local log, meta, ids, index, usage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ttl = tonumber(ARGV[2])
local session = ARGV[3]
local n = tonumber(ARGV[9])
local FIRST = 10
if call('EXISTS', log, meta) > 0 then
  return 0
end
local had_index = call('EXISTS', index) == 1
local had_usage = call('EXISTS', usage) == 1
local bytes = 0
for i = 0, n - 1 do
  local b = FIRST + i * 7
  call('XADD', log, ARGV[b] .. '-0', 'id', ARGV[b + 1], 'role', ARGV[b + 2], 'content', ARGV[b + 3],
    'sources', ARGV[b + 4], 'ts', ARGV[b + 5], 'status', ARGV[b + 6])
  call('SADD', ids, ARGV[b + 1])
  bytes = bytes + #ARGV[b + 3] + #ARGV[b + 4]
end
-- Everything restored is in the archive already: arch = seq.
call('HSET', meta, 'created_at', ARGV[4], 'updated_at', ARGV[5], 'count', n, 'bytes', bytes,
  'seq', ARGV[6], 'trimmed', ARGV[7], 'auto', ARGV[8], 'arch', ARGV[6])
call('ZADD', index, ARGV[5], session)
call('HINCRBY', usage, 'bytes', bytes)
if ttl > 0 then
  call('EXPIRE', log, ttl)
  call('EXPIRE', meta, ttl)
  call('EXPIRE', ids, ttl)
  -- The user's index and usage total live at least as long as this session.
  for _, k in ipairs({index, usage}) do
    local p = call('PTTL', k)
    if (k == index and not had_index) or (k == usage and not had_usage) or (p >= 0 and p < ttl * 1000) then
      call('EXPIRE', k, ttl)
    end
  end
end
-- Read meta last, so this connection tracks the session (tracking.rs).
call('EXISTS', meta)
return 1
