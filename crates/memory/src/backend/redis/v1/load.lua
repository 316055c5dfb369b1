-- Read one session: its meta and a bounded run of entries; refreshes the TTL of all its keys.
-- KEYS: log, meta, ids, index
-- ARGV: mode ('after' = oldest entries after a seq, 'newest' = newest entries after a
--       seq, 'meta' = no entries), after_seq, max_messages, max_bytes,
--       ttl_secs (0 = never expire; -1 = leave TTLs alone), session, now_ms,
--       tier (1 = hot tier of an archive: a session with unarchived messages keeps
--       no TTL, see append.lua)
-- Returns: false when the session does not exist, else
--          {count, bytes, created_at, updated_at, seq, trimmed, pttl, entries, more, repaired,
--           title}
-- The run stops at max_messages entries, or as soon as its entries reach max_bytes: a
-- read never walks a whole long session (it would keep Redis busy for every client).
local log, meta, ids, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode = ARGV[1]
local after = tonumber(ARGV[2])
local max_n = math.max(1, tonumber(ARGV[3]))
local max_b = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local session = ARGV[6]
local now = ARGV[7]
local tier = ARGV[8] == '1'

local m, repaired = check_session(log, meta, ids, index, session, now)
if not m then
  return false
end
local pttl
if tier and ttl > 0 and (tonumber(redis.call('HGET', meta, 'arch')) or 0) < (tonumber(m[5]) or 0) then
  redis.call('EXPIRE', index, ttl)
  pttl = -1
elseif ttl > 0 then
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

local seq = tonumber(m[5]) or 0
local trimmed = tonumber(m[6]) or 0
local entries, more = {}, 0
-- Entries are fetched a few at a time, more when they turn out small, so that a run
-- of big entries reads little past its bound.
local taken, used, chunk = 0, 0, 4
local function full()
  return taken >= max_n or used >= max_b
end
local function next_chunk()
  local avg = math.max(1, used / math.max(1, taken))
  return math.max(1, math.min(256, max_n - taken, math.floor((max_b - used) / avg) + 1))
end
if mode == 'after' and seq > after then
  local from = math.max(after, trimmed) + 1
  local last = nil
  while from <= seq and not full() do
    local got = redis.call('XRANGE', log, from .. '-0', '+', 'COUNT', math.min(chunk, max_n - taken))
    if #got == 0 then
      break
    end
    for _, e in ipairs(got) do
      entries[#entries + 1] = e
      taken = taken + 1
      used = used + entry_bytes(e[2])
      last = entry_seq(e[1])
      from = last + 1
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
    local got = redis.call('XREVRANGE', log, upto .. '-0', (floor + 1) .. '-0', 'COUNT',
      math.min(chunk, max_n - taken))
    if #got == 0 then
      break
    end
    for _, e in ipairs(got) do
      rev[#rev + 1] = e
      taken = taken + 1
      used = used + entry_bytes(e[2])
      first = entry_seq(e[1])
      upto = first - 1
      if full() then
        break
      end
    end
    chunk = next_chunk()
  end
  for i = #rev, 1, -1 do
    entries[#entries + 1] = rev[i]
  end
  if first and first > floor + 1 then
    more = 1
  end
end
-- Read meta after the EXPIREs so the session stays tracked for this client (tracking.rs).
redis.call('EXISTS', meta)
local fixed = 0
if repaired then
  fixed = 1
end
return {m[3], m[4], m[1], m[2], m[5], m[6], pttl, entries, more, fixed, shown_title(m)}
