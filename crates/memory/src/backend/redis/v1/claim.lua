-- The archiver's first step for one session: take the session's archive lock and read
-- the entries the archive has not confirmed yet (after `arch`), bounded like a read.
-- KEYS: log, meta, lock
-- ARGV: token, lock_ms, max_messages, max_bytes
-- Returns: {'busy'} when another process holds the lock (it is archiving, rehydrating
--          or deleting this session); {'missing'} when the session is gone (lock not
--          kept); else {'ok', created_at, seq, arch, entries, more, title}: the lock is
--          held until mark.lua or unlock.lua, or for lock_ms.
local log, meta, lock = KEYS[1], KEYS[2], KEYS[3]
local max_n = math.max(1, tonumber(ARGV[3]))
local max_b = tonumber(ARGV[4])
if not redis.call('SET', lock, ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'busy'}
end
local m = redis.call('HMGET', meta, 'created_at', 'seq', 'arch', 'trimmed', 'title')
if not m[1] then
  redis.call('DEL', lock)
  return {'missing'}
end
local seq = tonumber(m[2]) or 0
local arch = tonumber(m[3]) or 0
-- Entries trimmed (max_messages) before they were archived are trimmed in the
-- archive too: it keeps the same cap.
local from = math.max(arch, tonumber(m[4]) or 0) + 1
local entries, used, more = {}, 0, 0
while from <= seq and #entries < max_n and used < max_b do
  local got = redis.call('XRANGE', log, from .. '-0', '+', 'COUNT', math.min(64, max_n - #entries))
  if #got == 0 then
    break
  end
  for _, e in ipairs(got) do
    entries[#entries + 1] = e
    used = used + entry_bytes(e[2])
    from = entry_seq(e[1]) + 1
    if #entries >= max_n or used >= max_b then
      break
    end
  end
end
if from <= seq and #entries > 0 then
  more = 1
end
return {'ok', m[1], seq, arch, entries, more, m[5] or false}
