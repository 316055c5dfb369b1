-- Shared by the v2 scripts (prepended to each, after buckets.lua). Layout (keys.rs):
--   list  LIST of packed messages, oldest first; the element at index i has seq trimmed+1+i
--   hash  HASH of the session's figures (created_at, updated_at, count, bytes, seq,
--         trimmed, title, auto, arch) and the dedupe buckets (buckets.lua): the 16-byte
--         ids of every message the session ever stored (trimming does not forget them)
-- A packed message (built by pack.rs, read by unpack there):
--   byte 1 tag (2), bytes 2-17 id, 18-25 seq (u64 BE), 26-33 created_at ms (i64 BE),
--   34 role ('u' 'a' 's'), 35 status ('c' 'i'), 36-39 length of the sources JSON (u32 BE),
--   then the sources JSON, then the content.
-- A v1 entry that could not be converted is kept as tag 0 followed by the reason.
local call = redis.call
local HEAD = 39
-- session_figures reads these many figures before any extra field.
local FIGURES = 10

-- Stored bytes of a packed message: content plus sources, as Message::stored_bytes counts.
local function packed_bytes(v)
  if string.byte(v, 1) ~= 2 then
    return 0
  end
  return #v - HEAD
end

local function packed_id(v)
  return string.sub(v, 2, 17)
end

-- `n` as `width` bytes, big-endian.
local function be(n, width)
  return struct.pack('>I' .. width, n)
end

local function packed_seq(v)
  if #v < HEAD then
    return nil
  end
  return (struct.unpack('>I8', v, 18))
end

-- The packed message with its seq replaced (the caller gives seqs; the script assigns them).
local function with_seq(v, seq)
  return string.sub(v, 1, 17) .. struct.pack('>I8', seq) .. string.sub(v, 26)
end

-- Records ids (a list of 16-byte strings) in the hash's buckets, reading each bucket once.
-- No bucket splits here: the appends that follow split what is due, two at a time.
local function remember(hash, ids)
  local n = tonumber(call('HGET', hash, 'lh')) or BUCKETS
  local grouped, order = {}, {}
  for _, id in ipairs(ids) do
    local b = (bucket_fields(id, n))
    if not grouped[b] then
      grouped[b] = {}
      order[#order + 1] = b
    end
    table.insert(grouped[b], id)
  end
  for i = 1, #order, 64 do
    local fields = {}
    for j = i, math.min(#order, i + 63) do
      fields[#fields + 1] = order[j]
    end
    local have = call('HMGET', hash, unpack(fields))
    local args = {}
    for j, b in ipairs(fields) do
      args[#args + 1] = b
      args[#args + 1] = (have[j] or '') .. table.concat(grouped[b])
    end
    call('HSET', hash, unpack(args))
  end
end

-- Forgets every id (the messages they named are gone: a replay must store them again).
local function forget_all(hash)
  local fields = splitting().all_fields(tonumber(call('HGET', hash, 'lh')) or BUCKETS)
  for from = 1, #fields, 256 do
    call('HDEL', hash, unpack(fields, from, math.min(#fields, from + 255)))
  end
  call('HDEL', hash, 'lh')
end

-- Gives `key` the expiry `pttl` (ms) when it has none and `pttl` is one.
local function copy_expiry(key, pttl)
  if pttl > 0 and call('PTTL', key) == -1 then
    call('PEXPIRE', key, pttl)
  end
end

local function shown_title(m)
  if m[7] then
    return m[7]
  end
  if m[8] and m[8] ~= '' then
    return m[8]
  end
  return false
end

-- What only a conversion or a repair needs, defined when one happens (the closures of
-- every function defined at the top cost every call of every script).
local function rare()
  -- Whether the hash's buckets (`n` of them) hold `id`.
  local function stored(hash, id, n)
    local got = call('HMGET', hash, bucket_fields(id, n))
    return holds(got[1], id) or holds(got[2], id)
  end

  -- 16 raw bytes of a UUID written as text, or nil.
  local function uuid_raw(text)
    local hex = string.gsub(text or '', '-', '')
    if #hex ~= 32 or string.find(hex, '[^0-9a-fA-F]') then
      return nil
    end
    return (string.gsub(hex, '..', function(h)
      return string.char(tonumber(h, 16))
    end))
  end

  -- A v1 stream entry's fields, packed with `seq`.
  local function pack_v1(fields, seq)
    local f = {}
    for j = 1, #fields, 2 do
      f[fields[j]] = fields[j + 1]
    end
    local id = uuid_raw(f.id)
    local ts = tonumber(f.ts)
    if not id or not f.role or not f.content or not ts or ts < 0 then
      return '\0' .. 'a v1 entry without a valid id, role, content or ts'
    end
    local sources = f.sources or ''
    return '\2' .. id .. be(seq, 8) .. be(ts, 8) .. string.sub(f.role, 1, 1)
      .. string.sub(f.status or 'complete', 1, 1) .. be(#sources, 4) .. sources .. f.content
  end

  -- Moves a session stored in the v1 layout (a stream, a meta hash and an id set) into
  -- the v2 keys, a bounded step at a time (`budget` bytes of messages), oldest entries
  -- first, so that converting a 100 MB conversation never keeps Redis busy for long:
  -- while the hash says `converting`, every script asks its caller to run steps first
  -- (the CONVERTING error). The first step writes the figures; the last deletes the v1
  -- keys. When the v2 session existed already (a v1 server wrote to it after it was
  -- converted, during a rolling deploy), the v1 entries whose ids it does not hold are
  -- appended after its own. Positions: a v1 session keeps its seqs when they follow
  -- each other; gaps close by moving older entries up (never down, so an archive's
  -- `arch` never skips one). Returns true when no v1 data is left.
  local function convert_step(k, budget)
    local m = call('HMGET', k.hash, 'created_at', 'converting', 'seq')
    if not m[2] then
      if call('EXISTS', k.v1log, k.v1meta) == 0 then
        return true
      end
      local old = call('HMGET', k.v1meta, 'created_at', 'updated_at', 'seq', 'title', 'auto', 'arch',
        'count')
      local pttl = call('PTTL', k.v1meta)
      if not m[1] then
        -- A fresh conversion: the figures first, positions from v1's.
        local n = call('XLEN', k.v1log)
        local last = tonumber(old[3]) or 0
        local newest = call('XREVRANGE', k.v1log, '+', '-', 'COUNT', 1)[1]
        if newest then
          last = math.max(last, tonumber(string.match(newest[1], '^(%d+)')) or 0)
        end
        local base = last - n
        local args = {'created_at', old[1] or old[2] or '0', 'updated_at', old[2] or old[1] or '0',
          'count', 0, 'bytes', 0, 'seq', base, 'trimmed', base}
        if old[4] then
          args[#args + 1] = 'title'
          args[#args + 1] = old[4]
        end
        if old[5] then
          args[#args + 1] = 'auto'
          args[#args + 1] = old[5]
        end
        if old[6] then
          args[#args + 1] = 'arch'
          args[#args + 1] = math.min(tonumber(old[6]) or 0, last)
        end
        call('HSET', k.hash, unpack(args))
        if pttl > 0 then
          call('PEXPIRE', k.hash, pttl)
        end
      elseif old[2] then
        call('HSET', k.hash, 'updated_at', old[2])
      end
      call('HSET', k.hash, 'converting', 1)
    end
    local fig = call('HMGET', k.hash, 'seq', 'count', 'bytes')
    local seq, count, bytes = tonumber(fig[1]) or 0, tonumber(fig[2]) or 0, tonumber(fig[3]) or 0
    local packed, ids, seen, moved, used = {}, {}, {}, {}, 0
    local buckets = tonumber(call('HGET', k.hash, 'lh')) or BUCKETS
    local chunk = call('XRANGE', k.v1log, '-', '+', 'COUNT', 64)
    for _, e in ipairs(chunk) do
      local f = e[2]
      local id = nil
      for j = 1, #f, 2 do
        if f[j] == 'id' then
          id = uuid_raw(f[j + 1])
        end
      end
      moved[#moved + 1] = e[1]
      if not id or not (seen[id] or stored(k.hash, id, buckets)) then
        seq = seq + 1
        local v = pack_v1(f, seq)
        packed[#packed + 1] = v
        used = used + #v
        bytes = bytes + packed_bytes(v)
        count = count + 1
        if id then
          ids[#ids + 1] = id
          seen[id] = true
        end
      end
      if used >= budget then
        break
      end
    end
    if #packed > 0 then
      call('RPUSH', k.list, unpack(packed))
      local p = call('PTTL', k.hash)
      if p > 0 then
        call('PEXPIRE', k.list, p)
      end
    end
    remember(k.hash, ids)
    if #moved > 0 then
      call('XDEL', k.v1log, unpack(moved))
    end
    call('HSET', k.hash, 'count', count, 'bytes', bytes, 'seq', seq)
    if call('XLEN', k.v1log) > 0 then
      return false
    end
    call('DEL', k.v1log, k.v1meta, k.v1ids)
    call('HDEL', k.hash, 'converting')
    if (tonumber(call('HGET', k.hash, 'arch')) or seq) < seq then
      -- Unarchived messages: the session keeps no TTL until the archiver has them.
      call('PERSIST', k.hash)
      call('PERSIST', k.list)
    end
    return true
  end

  -- Rebuilds the figures and the dedupe buckets from the list, for a session whose hash
  -- Redis evicted (maxmemory) while its list stayed. Reads the whole list, bounded by the
  -- per-session byte quota; it runs once, for a damaged session.
  local function rebuild_hash(list, hash, index, session, now)
    local count, bytes, first, last, first_ts, last_ts = 0, 0, nil, 0, nil, nil
    local ids = {}
    local n = call('LLEN', list)
    for i = 0, n - 1, 256 do
      for _, v in ipairs(call('LRANGE', list, i, i + 255)) do
        count = count + 1
        bytes = bytes + packed_bytes(v)
        local s = packed_seq(v)
        if s and string.byte(v, 1) == 2 then
          ids[#ids + 1] = packed_id(v)
          first = first or s
          last = s
        end
      end
    end
    if count == 0 then
      call('DEL', list)
      return nil
    end
    first = first or 1
    last = math.max(last, first + count - 1)
    remember(hash, ids)
    local created, updated = now, now
    call('HSET', hash, 'created_at', created, 'updated_at', updated, 'count', count, 'bytes', bytes,
      'seq', last, 'trimmed', last - count)
    call('ZADD', index, updated, session)
    local pttl = call('PTTL', list)
    copy_expiry(hash, pttl)
    copy_expiry(index, pttl)
    return true
  end

  return {convert_step = convert_step, rebuild_hash = rebuild_hash}
end

-- The most bytes of messages one conversion step moves.
local STEP_BYTES = 1048576

-- The session's figures {created_at, updated_at, count, bytes, seq, trimmed, title, auto,
-- arch, converting, extra...} (nil when the session does not exist), after repairing one
-- whose hash Redis evicted; and whether a repair was needed. A v1 session is converted
-- here when that takes one step; a bigger one raises CONVERTING (the caller runs
-- convert.lua until it is done, then calls again).
-- `extra` names more hash fields to read in the same command (dedupe buckets);
-- `guard` (rolling deploys from v1) looks for v1 keys on every call; `check_list`
-- (reads) makes sure a session with messages still has its list.
local function session_figures(k, session, now, extra, guard, check_list)
  local fields = {'created_at', 'updated_at', 'count', 'bytes', 'seq', 'trimmed', 'title', 'auto',
    'arch', 'converting'}
  if extra then
    for i = 1, #extra do
      fields[10 + i] = extra[i]
    end
  end
  local m = call('HMGET', k.hash, unpack(fields))
  if m[10] or ((guard or not m[1]) and call('EXISTS', k.v1log, k.v1meta) > 0) then
    if not rare().convert_step(k, STEP_BYTES) then
      error({err = 'CONVERTING ' .. session})
    end
    m = call('HMGET', k.hash, unpack(fields))
  end
  if m[1] then
    if check_list and (tonumber(m[3]) or 0) > 0 and call('EXISTS', k.list) == 0 then
      -- Redis evicted the list: its messages are gone. The figures say so, and their
      -- ids are forgotten, so that a journal replaying them puts them back. (An
      -- append finds this out from its RPUSHX instead.)
      forget_all(k.hash)
      call('HSET', k.hash, 'count', 0, 'bytes', 0, 'trimmed', m[5] or 0)
      m[3], m[4], m[6] = '0', '0', m[5] or '0'
      return m, true
    end
    return m, false
  end
  if call('EXISTS', k.list) == 0 then
    return nil, false
  end
  if not rare().rebuild_hash(k.list, k.hash, k.index, session, now) then
    return nil, true
  end
  return call('HMGET', k.hash, unpack(fields)), true
end

-- The key table of a script whose KEYS are list, hash, index, usage, v1log, v1meta, v1ids.
local function session_keys()
  return {list = KEYS[1], hash = KEYS[2], index = KEYS[3], usage = KEYS[4], v1log = KEYS[5],
    v1meta = KEYS[6], v1ids = KEYS[7]}
end
