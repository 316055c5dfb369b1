-- Set or clear the title a person gave a session, without touching its TTL or its
-- activity time (a rename is not a turn).
-- KEYS: log, meta, ids, index
-- ARGV: session, now_ms, set (1 = set to ARGV[4], 0 = clear), title
-- Returns: 1 when the session exists (and was changed), 0 when it does not.
local log, meta, ids, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local m = check_session(log, meta, ids, index, ARGV[1], ARGV[2])
if not m then
  return 0
end
if ARGV[3] == '1' then
  redis.call('HSET', meta, 'title', ARGV[4])
else
  redis.call('HDEL', meta, 'title')
end
return 1
