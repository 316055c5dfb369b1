-- The common append, lean: a session that exists, whose seq and bucket count the caller
-- knows, gets new messages with no TTL refresh due. It writes what append.lua would write
-- for the same call, with a fraction of the Lua (an EVALSHA spends more in Lua between
-- its commands than in them). Anything else (a seq or bucket count that moved, an id
-- already stored or given twice, a quota to recount or refuse, a session to create,
-- convert or repair) and it writes nothing and returns 'FULL': the caller runs
-- append.lua. Prepended: buckets.lua only.
-- KEYS: list, hash, index, usage
-- ARGV: now_ms, seq (the session's seq the caller expects: the values carry the seqs
--       after it), buckets (the number of dedupe buckets the caller expects),
--       max_messages, session, quota_session_bytes, quota_user_bytes, auto_title, tier,
--       ttl_secs, then the packed messages (common.lua's format)
-- Returns append.lua's reply (with repaired = 0), or 'FULL'.
local call = redis.call
local FIRST = 11
local n = #ARGV - FIRST + 1
local nb = tonumber(ARGV[3])
local fields = {'seq', 'count', 'bytes', 'created_at', 'trimmed', 'title', 'auto', 'arch',
  'converting', 'lh'}
local ids, seen, buckets, homes, at = {}, {}, {}, {}, {}
for i = 1, n do
  local id = string.sub(ARGV[FIRST + i - 1], 2, 17)
  if seen[id] then
    return 'FULL'
  end
  seen[id] = true
  ids[i] = id
  buckets[i], homes[i] = bucket_fields(id, nb)
end
-- The bucket a split would read, when this append makes one due.
local split, split_from = nil, nil
if tonumber(ARGV[2]) + n > BUCKET_LOAD * nb then
  split = splitting()
  split_from = (split.next_split(nb))
end
-- Each field read once: the buckets, the homes (nil when a bucket is its own home), and
-- the bucket a split would read.
local wanted = {split_from}
for i = 1, n do
  wanted[#wanted + 1] = buckets[i]
  wanted[#wanted + 1] = homes[i]
end
for _, f in ipairs(wanted) do
  if not at[f] then
    fields[#fields + 1] = f
    at[f] = #fields
  end
end
local m = call('HMGET', KEYS[2], unpack(fields))
local seq = tonumber(m[1])
local count = tonumber(m[2]) or 0
if m[9] or not m[4] or count == 0 or seq ~= tonumber(ARGV[2])
    or (tonumber(m[10]) or BUCKETS) ~= nb then
  return 'FULL'
end
local held = {}
for f, j in pairs(at) do
  held[f] = m[j]
end
local adding = 0
for i = 1, n do
  if holds(held[buckets[i]], ids[i]) or (homes[i] and holds(held[homes[i]], ids[i])) then
    return 'FULL'
  end
  adding = adding + #ARGV[FIRST + i - 1] - 39
end
local bytes = tonumber(m[3]) + adding
local max = tonumber(ARGV[4])
local quota_session_bytes = tonumber(ARGV[6])
if quota_session_bytes > 0 and bytes > quota_session_bytes then
  return 'FULL'
end
-- The user's running total, raised up front as append.lua does; a total just created or
-- over the limit is append.lua's to recount.
local quota_user_bytes = tonumber(ARGV[7])
local counted = 0
if quota_user_bytes > 0 and adding > 0 then
  local total = call('HINCRBY', KEYS[4], 'bytes', adding)
  if total == adding then
    call('DEL', KEYS[4])
    return 'FULL'
  elseif total > quota_user_bytes then
    call('HINCRBY', KEYS[4], 'bytes', -adding)
    return 'FULL'
  end
  counted = adding
end
if call('RPUSHX', KEYS[1], unpack(ARGV, FIRST)) == 0 then
  -- Redis evicted the list: append.lua repairs the session.
  if counted > 0 then
    call('HINCRBY', KEYS[4], 'bytes', -counted)
  end
  return 'FULL'
end
count = count + n
seq = seq + n
local trimmed = tonumber(m[5]) or 0
local added = adding
local update = {'updated_at', ARGV[1], 'count', count, 'bytes', bytes, 'seq', seq}
if max > 0 and count > max then
  for _, v in ipairs(call('LPOP', KEYS[1], count - max)) do
    local b = 0
    if string.byte(v, 1) == 2 then
      b = #v - 39
    end
    bytes = bytes - b
    added = added - b
    count = count - 1
    trimmed = trimmed + 1
  end
  update[4], update[6] = count, bytes
  update[9], update[10] = 'trimmed', trimmed
end
-- The new ids join their buckets, which split when due.
local grown = {}
for i = 1, n do
  local b = buckets[i]
  grown[b] = (grown[b] or held[b] or '') .. ids[i]
end
local nb_now = nb
if split then
  if grown[split_from] == nil then
    grown[split_from] = held[split_from]
  end
  nb_now = split.split_due(KEYS[2], nb, seq, grown, 2)
end
for b, v in pairs(grown) do
  update[#update + 1] = b
  update[#update + 1] = v
end
if nb_now ~= nb then
  update[#update + 1] = 'lh'
  update[#update + 1] = nb_now
end
local title = m[6] or false
if m[7] and m[7] ~= '' then
  title = title or m[7]
elseif ARGV[8] ~= '' then
  update[#update + 1] = 'auto'
  update[#update + 1] = ARGV[8]
  title = title or ARGV[8]
end
call('HSET', KEYS[2], unpack(update))
call('ZADD', KEYS[3], ARGV[1], ARGV[5])
local ttl = tonumber(ARGV[10])
-- In front of an archive, a session with messages the archive lacks never expires.
local pending = tonumber(ARGV[9]) > 0 and ttl > 0
if added ~= counted and call('HINCRBY', KEYS[4], 'bytes', added - counted) == added - counted
    and not pending and ttl > 0 and call('PTTL', KEYS[4]) == -1 then
  -- The user's total was just created: it gets the session's expiry.
  call('PEXPIRE', KEYS[4], ttl * 1000)
end
local pttl = -1
if pending then
  if (tonumber(m[8]) or 0) >= seq - n then
    call('PERSIST', KEYS[1])
    call('PERSIST', KEYS[2])
    call('PERSIST', KEYS[3])
    call('PERSIST', KEYS[4])
  end
  -- The read keeps the session in this connection's tracking table.
  call('EXISTS', KEYS[2])
else
  pttl = call('PTTL', KEYS[2])
end
local result = {count, bytes, m[4], ARGV[1], seq, trimmed, pttl, 0, title, nb_now}
for i = 1, n do
  result[10 + i] = seq - n + i
end
return result
