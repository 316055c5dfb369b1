-- The storage candidates for one session of ARGV[1] messages of 300 bytes, each written
-- into its own keys (benches/layout/run reads MEMORY USAGE of each): the v1 layout, and
-- the parts v2 was chosen from. KEYS: none. Returns 1.
local n = tonumber(ARGV[1])
local content = string.rep('x', 300)
local ts = '1764390000000'
-- A 36-character UUID text per message, and its 16 raw bytes.
local function ids(i)
  local text = string.format('%08x-aaaa-7bbb-8ccc-%012x', i * 7919, i)
  local raw = string.sub(string.format('%016x%016x', i * 7919, i), 1, 16)
  return text, raw
end
-- A v2 head: tag, id, seq, ts, role, status, sources length (39 bytes).
local function head(raw, i)
  return '\2' .. raw .. string.format('%08d', i) .. string.sub(ts .. '0', 1, 8) .. 'uc' .. '\0\0\0\0'
end
for i = 1, n do
  local text, raw = ids(i)
  -- v1: a stream entry of six fields, and the id in a set.
  redis.call('XADD', 'cand:v1:log', i .. '-0', 'id', text, 'role', 'user', 'content', content,
    'sources', '', 'ts', ts, 'status', 'complete')
  redis.call('SADD', 'cand:v1:ids', text)
  -- One packed value per message, in a stream (one field) and in a list.
  redis.call('XADD', 'cand:stream-packed', i .. '-0', 'm', head(raw, i) .. content)
  redis.call('RPUSH', 'cand:list-packed', head(raw, i) .. content)
  -- Dedupe records: a set of the raw ids, and 256 hash buckets of concatenated raw ids.
  redis.call('SADD', 'cand:ids-set-raw', raw)
  local b = '#' .. (i % 256)
  redis.call('HSET', 'cand:ids-buckets', b, (redis.call('HGET', 'cand:ids-buckets', b) or '') .. raw)
end
return 1
