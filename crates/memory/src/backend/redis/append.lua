-- Append messages to one session, atomically and idempotently, within the quotas.
-- KEYS: list, hash, index, usage, v1log, v1meta, v1ids
-- ARGV: now_ms, ttl_secs (0 = never), max_messages (0 = unbounded), session, n,
--       refresh (1 = re-apply the TTL to every key; 0 = only when this append creates keys),
--       quota_session_bytes, quota_user_sessions, quota_user_bytes (0 = unbounded),
--       auto_title (the first question among the messages, '' for none),
--       tier (0 = Redis alone; 1 = hot tier of an archive; 2 = the same, but a missing
--       session is not created: the caller looks in the archive first),
--       guard (1 = a rolling deploy from v1 may be under way: look for v1 keys when the
--       TTL is refreshed, at least every tenth of it, and when the session is new),
--       then n packed messages (common.lua; their seq is set here)
-- Returns: {count, bytes, created_at, updated_at, seq, trimmed, pttl, repaired, title,
--          buckets (the number of dedupe buckets, buckets.lua), seq_or_0 per message},
--          or the error "QUOTA <which> <figure> <limit>" when the new messages would break
--          a quota (then nothing was written), or "MISSING" (tier 2, no such session).
local k = session_keys()
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
local guard = ARGV[12] == '1'
local FIRST = 13

-- The guard's EXISTS costs a tenth of a turn; what a v1 server wrote is merged by the
-- next refreshing append or by any read that reaches Redis (load.lua checks every time).
local m, repaired = session_figures(k, session, now, {'lh'}, guard and refresh)
if not m and tier == 2 then
  return redis.error_reply('MISSING')
end
local created, count, bytes, seq, trimmed, arch = nil, 0, 0, 0, 0, 0
local nb = BUCKETS
if m then
  created = m[1]
  count = tonumber(m[3]) or 0
  bytes = tonumber(m[4]) or 0
  seq = tonumber(m[5]) or 0
  trimmed = tonumber(m[6]) or 0
  arch = tonumber(m[9]) or 0
  nb = tonumber(m[11]) or BUCKETS
end

-- Each id's bucket, and its home when that is another (buckets.lua), read in one command.
local ids, buckets, homes, held = {}, {}, {}, {}
local function place()
  ids, buckets, homes, held = {}, {}, {}, {}
  local wanted = {}
  for i = 1, n do
    local id = packed_id(ARGV[FIRST + i - 1])
    ids[i] = id
    buckets[i], homes[i] = bucket_fields(id, nb)
    for _, f in ipairs({buckets[i], homes[i]}) do
      if held[f] == nil then
        held[f] = false
        wanted[#wanted + 1] = f
      end
    end
  end
  if m and #wanted > 0 then
    local got = call('HMGET', k.hash, unpack(wanted))
    for j, f in ipairs(wanted) do
      held[f] = got[j]
    end
  end
end
place()
local seq_before, was_new = seq, not created
if not created or count == 0 or repaired then
  refresh = true
end

-- Which messages are new: not stored before, and not given twice in this call.
local fresh, adding = {}, 0
local function find_fresh()
  fresh, adding = {}, 0
  local seen = {}
  for i = 1, n do
    local id = ids[i]
    if not seen[id] and not holds(held[buckets[i]], id)
        and not (homes[i] and holds(held[homes[i]], id)) then
      fresh[i] = true
      adding = adding + packed_bytes(ARGV[FIRST + i - 1])
    end
    seen[id] = true
  end
end
find_fresh()
local new_count = 0
for _ in pairs(fresh) do
  new_count = new_count + 1
end

-- Recounts the user's live sessions and their bytes from the session hashes (v2, or v1
-- while a rolling deploy leaves some), dropping index entries of sessions that expired.
local prefix = string.sub(k.hash, 1, #k.hash - #session - 2)
local function recount()
  local live, total = 0, 0
  for _, s in ipairs(call('ZRANGE', k.index, 0, -1)) do
    local b = call('HGET', prefix .. s .. ':h', 'bytes') or call('HGET', prefix .. s .. ':meta', 'bytes')
    if b then
      live = live + 1
      total = total + tonumber(b)
    elseif call('EXISTS', prefix .. s .. ':l', prefix .. s .. ':log') == 0 then
      call('ZREM', k.index, s)
    end
  end
  call('HSET', k.usage, 'bytes', total)
  if ttl > 0 then
    copy_expiry(k.usage, ttl * 1000)
  end
  return live, total
end

if not created and quota_user_sessions > 0 and call('ZCARD', k.index) >= quota_user_sessions then
  local live = recount()
  if live >= quota_user_sessions then
    return redis.error_reply('QUOTA user_sessions ' .. live .. ' ' .. quota_user_sessions)
  end
end
if quota_session_bytes > 0 and bytes + adding > quota_session_bytes and adding > 0 then
  -- Trimming beyond max_messages frees the oldest entries' bytes in the same step.
  local freed = 0
  local drop = math.min(count, count + new_count - max)
  if max > 0 and drop > 0 then
    for _, v in ipairs(call('LRANGE', k.list, 0, drop - 1)) do
      freed = freed + packed_bytes(v)
    end
  end
  local would = bytes + adding - freed
  if would > quota_session_bytes then
    return redis.error_reply('QUOTA session_bytes ' .. would .. ' ' .. quota_session_bytes)
  end
end
-- Per user: the running total is raised by this append's bytes up front, which is also
-- the check in the common case (one command). A total just created (unknown before) or
-- over the limit is recounted from the session hashes, and the exact figure decides.
local counted = 0
if quota_user_bytes > 0 and adding > 0 then
  local total = call('HINCRBY', k.usage, 'bytes', adding)
  counted = adding
  if total == adding or total > quota_user_bytes then
    local _, used = recount()
    counted = 0
    if used + adding > quota_user_bytes then
      return redis.error_reply('QUOTA user_bytes ' .. (used + adding) .. ' ' .. quota_user_bytes)
    end
  end
end

-- The new messages, with their seqs, in one push. RPUSHX on a session that has
-- messages: 0 means Redis evicted its list (maxmemory), so its messages are gone, the
-- figures say so, and their ids are forgotten so that a journal replaying them puts
-- them back.
local out = {}
local function build()
  local push = {}
  local s = seq
  for i = 1, n do
    if fresh[i] then
      s = s + 1
      push[#push + 1] = with_seq(ARGV[FIRST + i - 1], s)
      out[i] = s
    else
      out[i] = 0
    end
  end
  return push, s
end
local push, last = build()
if #push > 0 then
  if count > 0 and call('RPUSHX', k.list, unpack(push)) == 0 then
    forget_all(k.hash)
    nb = BUCKETS
    trimmed, count, bytes = seq, 0, 0
    repaired, refresh = true, true
    place()
    find_fresh()
    push, last = build()
    call('RPUSH', k.list, unpack(push))
  elseif count == 0 then
    call('RPUSH', k.list, unpack(push))
  end
end
local added = adding
seq = last
count = count + #push
bytes = bytes + added

-- The dedupe buckets gain the new ids, and split when due (in the same HSET as the
-- figures).
local grown = {}
for i = 1, n do
  if fresh[i] then
    local b = buckets[i]
    grown[b] = (grown[b] or held[b] or '') .. ids[i]
  end
end
local nb_now = nb
if seq > BUCKET_LOAD * nb then
  local split = splitting()
  local split_from = (split.next_split(nb))
  if grown[split_from] == nil and held[split_from] ~= nil then
    grown[split_from] = held[split_from]
  end
  -- Two splits keep pace with a turn; a big append (an import, a replay) may do more.
  nb_now = split.split_due(k.hash, nb, seq, grown, 2 + math.floor(#push / 8))
end
local update = {}
for b, v in pairs(grown) do
  update[#update + 1] = b
  update[#update + 1] = v
end
if nb_now ~= nb then
  update[#update + 1] = 'lh'
  update[#update + 1] = nb_now
end

local trimmed_now = false
if max > 0 and count > max then
  -- The oldest entries go; their ids stay in the buckets, so a late replay of one of
  -- them still stores nothing.
  for _, v in ipairs(call('LPOP', k.list, count - max) or {}) do
    local b = packed_bytes(v)
    bytes = bytes - b
    added = added - b
    count = count - 1
    trimmed = trimmed + 1
  end
  trimmed_now = true
end
-- The automatic title: set by the append that brings the first question, never again.
local title = false
if m then
  title = shown_title(m)
  if (m[8] == false or m[8] == '') and auto_title ~= '' then
    update[#update + 1] = 'auto'
    update[#update + 1] = auto_title
    title = m[7] or auto_title
  end
elseif auto_title ~= '' then
  title = auto_title
end
if not created then
  created = now
  call('HSET', k.hash, 'created_at', created, 'updated_at', now, 'count', count, 'bytes', bytes,
    'seq', seq, 'trimmed', trimmed, 'auto', auto_title, unpack(update))
elseif trimmed_now or repaired then
  call('HSET', k.hash, 'updated_at', now, 'count', count, 'bytes', bytes, 'seq', seq,
    'trimmed', trimmed, unpack(update))
else
  call('HSET', k.hash, 'updated_at', now, 'count', count, 'bytes', bytes, 'seq', seq,
    unpack(update))
end
-- The index orders the user's sessions by last activity (listing pages by it).
call('ZADD', k.index, now, session)
-- The running total follows what was stored and trimmed.
local usage_created = false
if added ~= counted then
  usage_created = call('HINCRBY', k.usage, 'bytes', added - counted) == added - counted
end

-- The TTL slides: every key of the session gets it again, at least every tenth of the
-- TTL (the caller decides; it saves commands). In front of an archive, a session with
-- messages the archive has not confirmed (`arch` below `seq`) never expires: the
-- archiver gives it the TTL back once it has written them (mark.lua).
local pending = false
if tier > 0 and ttl > 0 then
  pending = arch < seq
  if pending and (arch >= seq_before or was_new or repaired) then
    call('PERSIST', k.list)
    call('PERSIST', k.hash)
    call('PERSIST', k.index)
    call('PERSIST', k.usage)
  elseif pending and refresh then
    call('PERSIST', k.index)
    call('PERSIST', k.usage)
  end
end
local pttl = -2
if pending then
  pttl = -1
elseif refresh then
  if ttl > 0 then
    call('EXPIRE', k.list, ttl)
    call('EXPIRE', k.hash, ttl)
    call('EXPIRE', k.index, ttl)
    call('EXPIRE', k.usage, ttl)
    pttl = ttl * 1000
  else
    call('PERSIST', k.list)
    call('PERSIST', k.hash)
    call('PERSIST', k.index)
    call('PERSIST', k.usage)
    pttl = -1
  end
end
if not refresh and not pending and usage_created and ttl > 0 then
  copy_expiry(k.usage, ttl * 1000)
end

-- A read of the hash after the writes keeps the session in this connection's
-- client-side-caching table (tracking.rs).
if pttl == -2 then
  pttl = call('PTTL', k.hash)
else
  call('EXISTS', k.hash)
end

local fixed = 0
if repaired then
  fixed = 1
end
local result = {count, bytes, created, now, seq, trimmed, pttl, fixed, title, nb_now}
for i = 1, n do
  result[10 + i] = out[i]
end
return result
