-- The archiver's first step for one session: take the session's archive lock and read
-- the messages the archive has not confirmed yet (after `arch`), bounded like a read.
-- KEYS: list, hash, index, usage, v1log, v1meta, v1ids, lock
-- ARGV: token, lock_ms, max_messages, max_bytes, now_ms
-- Returns: {'busy'} when another process holds the lock (it is archiving, rehydrating
--          or deleting this session); {'missing'} when the session is gone (lock not
--          kept); else {'ok', created_at, seq, arch, messages, more, title}, messages
--          packed (common.lua): the lock is held until mark.lua or unlock.lua, or for
--          lock_ms.
local k = session_keys()
local lock = KEYS[8]
local max_n = math.max(1, tonumber(ARGV[3]))
local max_b = tonumber(ARGV[4])
-- A v1 session is converted here too (the sweep finds v1 sessions written before an
-- archive was configured); the guard is on: the archiver runs rarely per session.
local m = session_figures(k, '', ARGV[5], nil, true)
if not m then
  return {'missing'}
end
if not call('SET', lock, ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'busy'}
end
local seq = tonumber(m[5]) or 0
local arch = tonumber(m[9]) or 0
local trimmed = tonumber(m[6]) or 0
-- Messages trimmed (max_messages) before they were archived are trimmed in the
-- archive too: it keeps the same cap.
local from = math.max(arch, trimmed) + 1
local messages, used, more = {}, 0, 0
while from <= seq and #messages < max_n and used < max_b do
  local want = math.min(64, max_n - #messages, seq - from + 1)
  local got = call('LRANGE', k.list, from - trimmed - 1, from - trimmed - 2 + want)
  if #got == 0 then
    break
  end
  for _, v in ipairs(got) do
    messages[#messages + 1] = v
    used = used + packed_bytes(v)
    from = from + 1
    if #messages >= max_n or used >= max_b then
      break
    end
  end
end
if from <= seq and #messages > 0 then
  more = 1
end
return {'ok', m[1], seq, arch, messages, more, m[7] or false}
