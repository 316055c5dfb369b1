-- Delete every key of one session and its index entry.
-- KEYS: log, meta, ids, index   ARGV: session
-- Returns 1 when the session existed, else 0.
local existed = redis.call('EXISTS', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return existed
