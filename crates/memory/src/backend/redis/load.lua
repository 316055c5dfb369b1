-- Read one session: its figures and a bounded run of messages; refreshes the TTL of its keys.
-- KEYS: list, hash, index, usage, v1log, v1meta, v1ids
-- ARGV: mode ('after' = oldest messages after a seq, 'newest' = newest messages after a
--       seq, 'meta' = no messages), after_seq, max_messages, max_bytes,
--       ttl_secs (0 = never expire; -1 = leave TTLs alone), session, now_ms,
--       tier (1 = hot tier of an archive: a session with unarchived messages keeps
--       no TTL, see append.lua), guard (1 = look for v1 keys on every call)
-- Returns: false when the session does not exist, else
--          {count, bytes, created_at, updated_at, seq, trimmed, pttl, messages, more,
--           repaired, title, buckets}, messages being packed (common.lua), oldest first,
--          buckets the number of dedupe buckets (buckets.lua).
-- The run stops at max_messages, or as soon as its messages reach max_bytes: a read
-- never walks a whole long session (it would keep Redis busy for every client).
local k = session_keys()
local mode = ARGV[1]
local after = tonumber(ARGV[2])
local max_n = math.max(1, tonumber(ARGV[3]))
local max_b = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local session = ARGV[6]
local now = ARGV[7]
local tier = ARGV[8] == '1'
local guard = ARGV[9] == '1'

local m, repaired = session_figures(k, session, now, {'lh'}, guard, true)
if not m then
  return false
end
local seq = tonumber(m[5]) or 0
local trimmed = tonumber(m[6]) or 0
local pttl
if tier and ttl > 0 and (tonumber(m[9]) or 0) < seq then
  call('EXPIRE', k.index, ttl)
  pttl = -1
elseif ttl > 0 then
  call('EXPIRE', k.list, ttl)
  call('EXPIRE', k.hash, ttl)
  call('EXPIRE', k.index, ttl)
  pttl = ttl * 1000
elseif ttl == 0 then
  call('PERSIST', k.list)
  call('PERSIST', k.hash)
  call('PERSIST', k.index)
  pttl = -1
else
  pttl = call('PTTL', k.hash)
end

local messages, more = {}, 0
-- Messages are fetched a few at a time, more when they turn out small, so that a run of
-- big ones reads little past its bound.
local taken, used, chunk = 0, 0, 4
local function full()
  return taken >= max_n or used >= max_b
end
local function next_chunk()
  local avg = math.max(1, used / math.max(1, taken))
  return math.max(1, math.min(256, max_n - taken, math.floor((max_b - used) / avg) + 1))
end
-- The list element of a seq; a message whose own seq disagrees means the figures and
-- the list went apart, which a read must not paper over.
local function at(s)
  return s - trimmed - 1
end
local function check(v, s)
  local own = packed_seq(v)
  if string.byte(v, 1) == 2 and own ~= s then
    return redis.error_reply('CORRUPT the list and the figures of ' .. session .. ' disagree at seq ' .. s)
  end
end
if mode == 'after' and seq > after then
  local from = math.max(after, trimmed) + 1
  local last = nil
  while from <= seq and not full() do
    local want = math.min(chunk, max_n - taken, seq - from + 1)
    local got = call('LRANGE', k.list, at(from), at(from + want - 1))
    if #got == 0 then
      break
    end
    local bad = check(got[1], from)
    if bad then
      return bad
    end
    for _, v in ipairs(got) do
      messages[#messages + 1] = v
      taken = taken + 1
      used = used + packed_bytes(v)
      last = from
      from = from + 1
      if full() then
        break
      end
    end
    chunk = next_chunk()
  end
  if last and last < seq then
    more = 1
  end
elseif mode == 'newest' and seq > after then
  local floor = math.max(after, trimmed)
  local upto = seq
  local first = nil
  local rev = {}
  while upto > floor and not full() do
    local want = math.min(chunk, max_n - taken, upto - floor)
    local got = call('LRANGE', k.list, at(upto - want + 1), at(upto))
    if #got == 0 then
      break
    end
    local bad = check(got[#got], upto)
    if bad then
      return bad
    end
    for i = #got, 1, -1 do
      local v = got[i]
      rev[#rev + 1] = v
      taken = taken + 1
      used = used + packed_bytes(v)
      first = upto
      upto = upto - 1
      if full() then
        break
      end
    end
    chunk = next_chunk()
  end
  for i = #rev, 1, -1 do
    messages[#messages + 1] = rev[i]
  end
  if first and first > floor + 1 then
    more = 1
  end
end
-- Read the hash after the EXPIREs so the session stays tracked for this client.
call('EXISTS', k.hash)
local fixed = 0
if repaired then
  fixed = 1
end
return {m[3], m[4], m[1], m[2], m[5], m[6], pttl, messages, more, fixed, shown_title(m),
  tonumber(m[11]) or BUCKETS}
