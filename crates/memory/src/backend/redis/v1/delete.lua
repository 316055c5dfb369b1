-- Delete every key of one session, its index entry and its share of the user's usage
-- (the usage total itself with the user's last session).
-- KEYS: log, meta, ids, index, usage   ARGV: session
-- Returns 1 when the session existed, else 0.
local existed = 0
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  existed = 1
end
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes')) or 0
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[4]) == 0 then
  -- The user's last session: nothing of theirs stays behind.
  redis.call('DEL', KEYS[5])
elseif bytes > 0 and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HINCRBY', KEYS[5], 'bytes', -bytes)
end
return existed
