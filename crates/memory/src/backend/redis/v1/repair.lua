-- Shared by the scripts (prepended to each): finding a session whose keys Redis
-- evicted one by one (maxmemory with an allkeys-* or volatile-* policy) and rebuilding
-- what is missing from what is left, so that no append fails for it and the counters
-- agree with the log.

-- Stored bytes of one entry: content plus sources, as Message::stored_bytes counts.
local function entry_bytes(fields)
  local n = 0
  for j = 1, #fields, 2 do
    local f = fields[j]
    if f == 'content' or f == 'sources' then
      n = n + #fields[j + 1]
    end
  end
  return n
end

-- The seq of a stream entry id "<seq>-0".
local function entry_seq(entry_id)
  return tonumber(string.match(entry_id, '^(%d+)'))
end

local function entry_field(fields, name)
  for j = 1, #fields, 2 do
    if fields[j] == name then
      return fields[j + 1]
    end
  end
  return nil
end

-- Gives `key` the expiry `pttl` (ms) when it has none and `pttl` is one.
local function copy_expiry(key, pttl)
  if pttl > 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, pttl)
  end
end

-- Rebuilds the id set from the log and counts the log, 256 entries at a time. Runs
-- only for a damaged session, so reading its whole log (bounded by the per-session
-- byte quota) is a price paid once.
local function scan_log(log, ids)
  redis.call('DEL', ids)
  local count, bytes, first, last, first_ts, last_ts = 0, 0, nil, 0, nil, nil
  local start = '-'
  while true do
    local chunk = redis.call('XRANGE', log, start, '+', 'COUNT', 256)
    for _, e in ipairs(chunk) do
      local fields = e[2]
      local id = entry_field(fields, 'id')
      if id then
        redis.call('SADD', ids, id)
      end
      count = count + 1
      bytes = bytes + entry_bytes(fields)
      local s = entry_seq(e[1])
      if not first then
        first = s
        first_ts = entry_field(fields, 'ts')
      end
      last = s
      last_ts = entry_field(fields, 'ts') or last_ts
    end
    if #chunk < 256 then
      break
    end
    start = (last + 1) .. '-0'
  end
  return count, bytes, first, last, first_ts, last_ts
end

-- The title a session shows: the one given by a person (meta field `title`), else the
-- automatic one (`auto`: the first question; '' while none came; absent for sessions
-- stored before titles existed, and for metas rebuilt from the log); false for none.
local function shown_title(m)
  if m[7] then
    return m[7]
  end
  if m[8] and m[8] ~= '' then
    return m[8]
  end
  return false
end

-- The session's meta fields {created_at, updated_at, count, bytes, seq, trimmed, title,
-- auto} (nil when the session does not exist), repaired first if its keys are partly
-- missing, and whether a repair was needed.
local function check_session(log, meta, ids, index, session, now)
  local m = redis.call('HMGET', meta, 'created_at', 'updated_at', 'count', 'bytes', 'seq', 'trimmed',
    'title', 'auto')
  if m[1] then
    if (tonumber(m[3]) or 0) == 0 or redis.call('EXISTS', log, ids) == 2 then
      return m, false
    end
    if redis.call('EXISTS', log) == 0 then
      -- The log was evicted: its messages are gone. The counters say so, and their ids
      -- are forgotten, so that a journal replaying them puts them back.
      local seq = m[5] or '0'
      redis.call('DEL', ids)
      redis.call('HSET', meta, 'count', 0, 'bytes', 0, 'trimmed', seq)
      m[3], m[4], m[6] = '0', '0', seq
      return m, true
    end
    -- The id set was evicted: rebuild it; the counters are intact.
    scan_log(log, ids)
    copy_expiry(ids, redis.call('PTTL', meta))
    return m, true
  end
  if redis.call('EXISTS', log) == 0 then
    return nil, false
  end
  -- The meta was evicted and the log stayed: rebuild the meta from the log.
  local count, bytes, first, last, first_ts, last_ts = scan_log(log, ids)
  if count == 0 then
    redis.call('DEL', log, ids)
    return nil, true
  end
  local created = first_ts or now
  local updated = last_ts or now
  redis.call('HSET', meta, 'created_at', created, 'updated_at', updated, 'count', count,
    'bytes', bytes, 'seq', last, 'trimmed', first - 1)
  redis.call('ZADD', index, updated, session)
  local pttl = redis.call('PTTL', log)
  copy_expiry(meta, pttl)
  copy_expiry(ids, pttl)
  copy_expiry(index, pttl)
  return {created, updated, tostring(count), tostring(bytes), tostring(last), tostring(first - 1)}, true
end

