-- The dedupe buckets, prepended to every script that reads or writes them (common.lua,
-- turn.lua). A bucket is a field of the session's hash holding the concatenated 16-byte
-- ids of the messages stored under it, trimmed ones included.
--
-- A session starts with 256 buckets, field '#' plus one byte: the XOR of the id's bytes,
-- as the first v2 release laid them out. Once the session has stored more than
-- BUCKET_LOAD ids per bucket (its seq counts them), the buckets split one at a time, in
-- order (linear hashing): bucket s shares its ids with a new bucket s + 2^L by one more
-- bit of the id's hash. A bucket then holds BUCKET_LOAD to twice that many ids however
-- long the conversation, and an append, which reads and rewrites a bucket per message,
-- costs the same at a hundred messages as at a million. Without splitting, a bucket grew
-- by one id per 256 messages ever stored, and every append hashed it whole in Lua.
--
-- 'lh' in the hash counts the buckets (absent: 256). A bucket that has split, or was
-- made by a split, is named by two bytes (three past 65535); the one-byte field of an
-- id's XOR is its home, where a server of the first v2 release puts every id it stores.
-- Once its bucket has split, a home holds only what such a server wrote since, normally
-- nothing, and lookups read it as well.
local BUCKETS = 256
local BUCKET_LOAD = 16

-- The fields that may hold the 16-byte `id` among `n` buckets: its bucket's, then its
-- home's when that is another field. (Every function defined here is made again on every
-- call of every script, so the common path gets one function, and splitting a few more
-- when it is due: see `splitting`.)
local function bucket_fields(id, n)
  local x = bit.bxor(string.byte(id, 1, 16))
  if n <= BUCKETS then
    return '#' .. string.char(x)
  end
  local b15, b16 = string.byte(id, 15, 16)
  local h = x + 256 * (b16 + 256 * b15)
  local top = 2 * BUCKETS
  while top <= n do
    top = top * 2
  end
  local b = h % top
  if b >= n then
    b = h % (top / 2)
  end
  if b < BUCKETS and b >= n - BUCKETS then
    -- A first-level bucket that has not split: the home itself.
    return '#' .. string.char(b)
  elseif b < 65536 then
    return '#' .. string.char(math.floor(b / 256), b % 256), '#' .. string.char(x)
  end
  return '#' .. string.char(math.floor(b / 65536), math.floor(b / 256) % 256, b % 256),
    '#' .. string.char(x)
end

-- Whether `id` is one of the 16-byte ids concatenated in `ids`.
local function holds(ids, id)
  if not ids then
    return false
  end
  local from = 1
  while true do
    local at = string.find(ids, id, from, true)
    if not at then
      return false
    end
    if (at - 1) % 16 == 0 then
      return true
    end
    from = at + 1
  end
end

-- What splitting needs, made when a split is due.
local function splitting()
  -- The field of bucket `b` among `n`: one byte while it is a first-level bucket that
  -- has not split, else two (three past 65535).
  local function name(b, n)
    if b < BUCKETS and b >= n - BUCKETS then
      return '#' .. string.char(b)
    elseif b < 65536 then
      return '#' .. string.char(math.floor(b / 256), b % 256)
    end
    return '#' .. string.char(math.floor(b / 65536), math.floor(b / 256) % 256, b % 256)
  end

  -- The field of the bucket to split next among `n`, and the bit (of the id's last two
  -- bytes, as a number) that sends an id from it to the new bucket, numbered `n`.
  local function next_split(n)
    local half = BUCKETS
    while half * 2 <= n do
      half = half * 2
    end
    return name(n - half, n), half / BUCKETS
  end

  -- Splits buckets while the session holds more than BUCKET_LOAD ids per bucket (`seq`
  -- counts them), at most `most` times. `vals` maps bucket fields to their values where
  -- the caller has them (false: known to be absent), and receives the buckets split; the
  -- others are read here. No empty field is made (a session repaired or converted with
  -- fewer ids than its seq says splits empty buckets); a home that split is left as ''
  -- when it was there, for first-release servers to write into. Returns the new number
  -- of buckets.
  local function split_due(hash, n, seq, vals, most)
    while most > 0 and seq > BUCKET_LOAD * n do
      local from, bit_at = next_split(n)
      local v = vals[from]
      if v == nil then
        v = redis.call('HGET', hash, from)
      end
      local keep, move = {}, {}
      if v then
        for at = 1, #v - 15, 16 do
          local b15, b16 = string.byte(v, at + 14, at + 15)
          if math.floor((b16 + 256 * b15) / bit_at) % 2 == 1 then
            move[#move + 1] = string.sub(v, at, at + 15)
          else
            keep[#keep + 1] = string.sub(v, at, at + 15)
          end
        end
      end
      local s = n - bit_at * BUCKETS
      n = n + 1
      local kept, moved = table.concat(keep), table.concat(move)
      vals[from] = v and '' or nil
      if kept ~= '' then
        vals[name(s, n)] = kept
      end
      if moved ~= '' then
        vals[name(n - 1, n)] = moved
      end
      most = most - 1
    end
    return n
  end

  -- Every bucket field of `n` buckets, homes included.
  local function all_fields(n)
    local fields = {}
    for b = 0, BUCKETS - 1 do
      fields[#fields + 1] = '#' .. string.char(b)
    end
    for b = 0, n - 1 do
      local f = name(b, math.huge)
      if #f > 2 then
        fields[#fields + 1] = f
      end
    end
    return fields
  end

  return {next_split = next_split, split_due = split_due, all_fields = all_fields}
end
