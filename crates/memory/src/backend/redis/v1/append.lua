-- Append messages to one session, atomically and idempotently, within the quotas.
-- KEYS: log, meta, ids, index, usage
-- ARGV: now_ms, ttl_secs (0 = never), max_messages (0 = unbounded), session, n,
--       refresh (1 = re-apply the TTL to every key; 0 = only when this append creates keys),
--       quota_session_bytes, quota_user_sessions, quota_user_bytes (0 = unbounded),
--       auto_title (the first question among the messages, '' for none),
--       tier (0 = Redis alone; 1 = hot tier of an archive; 2 = the same, but a missing
--       session is not created: the caller looks in the archive first),
--       then 6 fields per message: id, role, content, sources, ts, status
-- Returns: {count, bytes, created_at, updated_at, seq, trimmed, pttl, repaired, title,
--          seq_or_0 per message},
--          or the error "QUOTA <which> <figure> <limit>" when the new messages would break
--          a quota (then nothing was written), or "MISSING" (tier 2, no such session).
local call = redis.call
local log, meta, ids, index, usage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = ARGV[1]
local ttl = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local session = ARGV[4]
local n = tonumber(ARGV[5])
local refresh = ARGV[6] == '1'
local quota_session_bytes = tonumber(ARGV[7])
local quota_user_sessions = tonumber(ARGV[8])
local quota_user_bytes = tonumber(ARGV[9])
local auto_title = ARGV[10]
local tier = tonumber(ARGV[11])
local FIRST = 12

local m, repaired = check_session(log, meta, ids, index, session, now)
if not m and tier == 2 then
  return redis.error_reply('MISSING')
end
local created, count, bytes, seq, trimmed = nil, 0, 0, 0, 0
if m then
  created = m[1]
  count = tonumber(m[3]) or 0
  bytes = tonumber(m[4]) or 0
  seq = tonumber(m[5]) or 0
  trimmed = tonumber(m[6]) or 0
end
local seq_before, was_new = seq, not created
-- A new, empty or repaired session has keys without the TTL (and maybe no index entry).
if not created or count == 0 or repaired then
  refresh = true
end

-- Quotas, checked before anything is written. The bytes of all given messages bound
-- the bytes this append adds; only near a limit are stored ids looked up, to count
-- just the new ones.
local adding = 0
for i = 0, n - 1 do
  local b = FIRST + i * 6
  adding = adding + #ARGV[b + 2] + #ARGV[b + 3]
end
local exact = false
local function new_bytes()
  if exact then
    return adding
  end
  local seen, total = {}, 0
  for i = 0, n - 1 do
    local b = FIRST + i * 6
    local id = ARGV[b]
    if not seen[id] and call('SISMEMBER', ids, id) == 0 then
      total = total + #ARGV[b + 2] + #ARGV[b + 3]
    end
    seen[id] = true
  end
  exact, adding = true, total
  return total
end
-- Recounts the user's live sessions and their bytes from the session metas, dropping
-- index entries of sessions that expired (the running total in `usage` only ever
-- grows past the truth that way: sessions expire without telling it).
local prefix = string.sub(meta, 1, #meta - #session - 5)
local function recount()
  local live, total = 0, 0
  for _, s in ipairs(call('ZRANGE', index, 0, -1)) do
    local b = call('HGET', prefix .. s .. ':meta', 'bytes')
    if b then
      live = live + 1
      total = total + tonumber(b)
    elseif call('EXISTS', prefix .. s .. ':log') == 0 then
      call('ZREM', index, s)
    end
  end
  call('HSET', usage, 'bytes', total)
  if ttl > 0 then
    copy_expiry(usage, ttl * 1000)
  end
  return live, total
end

if not created and quota_user_sessions > 0 and call('ZCARD', index) >= quota_user_sessions then
  local live = recount()
  if live >= quota_user_sessions then
    return redis.error_reply('QUOTA user_sessions ' .. live .. ' ' .. quota_user_sessions)
  end
end
if quota_session_bytes > 0 and bytes + adding > quota_session_bytes and new_bytes() > 0 then
  -- Trimming beyond max_messages frees the oldest entries' bytes in the same step.
  local freed = 0
  if max > 0 and count + n > max then
    local new = 0
    local seen = {}
    for i = 0, n - 1 do
      local id = ARGV[FIRST + i * 6]
      if not seen[id] and call('SISMEMBER', ids, id) == 0 then
        new = new + 1
      end
      seen[id] = true
    end
    local k = math.min(count, count + new - max)
    if k > 0 then
      for _, e in ipairs(call('XRANGE', log, '-', '+', 'COUNT', k)) do
        freed = freed + entry_bytes(e[2])
      end
    end
  end
  local would = bytes + adding - freed
  if would > quota_session_bytes then
    return redis.error_reply('QUOTA session_bytes ' .. would .. ' ' .. quota_session_bytes)
  end
end
-- Per user: the running total is raised by this append's bytes up front, which is
-- also the check in the common case (one command). A total that was just created
-- (unknown before) or went over the limit is recounted from the session metas, and
-- the exact figure decides.
local counted = 0
if quota_user_bytes > 0 and adding > 0 then
  local total = call('HINCRBY', usage, 'bytes', adding)
  counted = adding
  if total == adding or total > quota_user_bytes then
    local _, used = recount()
    counted = 0
    if used + new_bytes() > quota_user_bytes then
      return redis.error_reply('QUOTA user_bytes ' .. (used + adding) .. ' ' .. quota_user_bytes)
    end
  end
end

local out = {}
local added = 0
for i = 0, n - 1 do
  local b = FIRST + i * 6
  if call('SADD', ids, ARGV[b]) == 1 then
    seq = seq + 1
    call('XADD', log, seq .. '-0', 'id', ARGV[b], 'role', ARGV[b + 1], 'content', ARGV[b + 2],
      'sources', ARGV[b + 3], 'ts', ARGV[b + 4], 'status', ARGV[b + 5])
    count = count + 1
    added = added + #ARGV[b + 2] + #ARGV[b + 3]
    out[i + 1] = seq
  else
    out[i + 1] = 0
  end
end
bytes = bytes + added

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
        added = added - #fields[j + 1]
      end
    end
    call('XDEL', log, entry[1])
    trimmed = entry_seq(entry[1])
    count = count - 1
  end
  trimmed_now = true
end
-- The automatic title: set by the append that brings the first question, never again.
local title = false
if m then
  title = shown_title(m)
  if m[8] == '' and auto_title ~= '' then
    call('HSET', meta, 'auto', auto_title)
    title = m[7] or auto_title
  end
elseif auto_title ~= '' then
  title = auto_title
end
if not created then
  created = now
  call('HSET', meta, 'created_at', created, 'updated_at', now, 'count', count, 'bytes', bytes,
    'seq', seq, 'trimmed', trimmed, 'auto', auto_title)
elseif trimmed_now then
  call('HSET', meta, 'updated_at', now, 'count', count, 'bytes', bytes, 'seq', seq,
    'trimmed', trimmed)
else
  call('HSET', meta, 'updated_at', now, 'count', count, 'bytes', bytes, 'seq', seq)
end
-- The index orders the user's sessions by last activity (listing pages by it).
call('ZADD', index, now, session)
-- The running total follows what was stored and trimmed (counted up front already,
-- unless duplicates or trimming made it differ).
local usage_created = false
if added ~= counted then
  -- A total equal to what this append added was (almost surely) created just now.
  usage_created = call('HINCRBY', usage, 'bytes', added - counted) == added - counted
end

-- The TTL slides: every key of the session gets it again. The caller asks for that at
-- least every tenth of the TTL rather than on every append (it saves commands a turn
-- costs), so a session lives 90% to 100% of the TTL after its last use.
-- In front of an archive, a session with messages the archive has not confirmed
-- (`arch` below `seq`) never expires: the archiver gives it the TTL back once it
-- has written them (mark.lua), so an outage of the archive cannot lose a message to
-- the TTL, however long it lasts.
local pending = false
if tier > 0 and ttl > 0 then
  local arch = tonumber(call('HGET', meta, 'arch')) or 0
  pending = arch < seq
  -- Already behind before this append: its keys lost their TTL then (only mark.lua
  -- gives it back, once nothing is behind), so there is nothing to do.
  if pending and (arch >= seq_before or was_new or repaired) then
    -- The user's index and usage total too: listing and quotas must see the session.
    call('PERSIST', log)
    call('PERSIST', meta)
    call('PERSIST', ids)
    call('PERSIST', index)
    call('PERSIST', usage)
  elseif pending and refresh then
    -- Another session of the user may have given them a TTL meanwhile (mark.lua).
    call('PERSIST', index)
    call('PERSIST', usage)
  end
end
local pttl = -2
if pending then
  pttl = -1
elseif refresh then
  if ttl > 0 then
    call('EXPIRE', log, ttl)
    call('EXPIRE', meta, ttl)
    call('EXPIRE', ids, ttl)
    -- Every session of the user follows the same TTL policy, and this one was touched
    -- last, so the index and the usage total must live at least as long as it does.
    call('EXPIRE', index, ttl)
    call('EXPIRE', usage, ttl)
    pttl = ttl * 1000
  else
    call('PERSIST', log)
    call('PERSIST', meta)
    call('PERSIST', ids)
    call('PERSIST', index)
    call('PERSIST', usage)
    pttl = -1
  end
end

if not refresh and not pending and usage_created and ttl > 0 then
  -- A usage total created by this append (evicted, or older than usage totals) must
  -- not outlive the user.
  copy_expiry(usage, ttl * 1000)
end

-- A read of meta after the writes above keeps the session in this connection's
-- client-side-caching table (see tracking.rs): Redis then tells this client when
-- another one changes it.
if pttl == -2 then
  pttl = call('PTTL', meta)
else
  call('EXISTS', meta)
end

local fixed = 0
if repaired then
  fixed = 1
end
local result = {count, bytes, created, now, seq, trimmed, pttl, fixed, title}
for i = 1, n do
  result[9 + i] = out[i]
end
return result
