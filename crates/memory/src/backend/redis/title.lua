-- Set or clear the title a person gave a session, without touching its TTL or its
-- activity time (a rename is not a turn).
-- KEYS: list, hash, index, usage, v1log, v1meta, v1ids
-- ARGV: session, now_ms, set (1 = set to ARGV[4], 0 = clear), title, guard
-- Returns: 1 when the session exists (and was changed), 0 when it does not.
local k = session_keys()
local m = session_figures(k, ARGV[1], ARGV[2], nil, ARGV[5] == '1')
if not m then
  return 0
end
if ARGV[3] == '1' then
  call('HSET', k.hash, 'title', ARGV[4])
else
  call('HDEL', k.hash, 'title')
end
return 1
