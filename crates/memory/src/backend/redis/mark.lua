-- The archiver's last step for one session: record that the archive holds every message
-- up to `upto`, give the session its TTL back once nothing is left unarchived (it had
-- none while something was: append.lua), and release the lock taken by claim.lua.
-- KEYS: list, hash, lock, index, usage
-- ARGV: token, upto, ttl_secs (0 = never expire)
-- Returns: {arch, seq} after the update ({0, 0} when the session is gone).
local list, hash, lock, index, usage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local upto = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local result = {0, 0}
local m = redis.call('HMGET', hash, 'seq', 'arch')
if m[1] then
  local seq = tonumber(m[1]) or 0
  local arch = math.max(tonumber(m[2]) or 0, math.min(upto, seq))
  redis.call('HSET', hash, 'arch', arch)
  if arch >= seq and ttl > 0 and redis.call('PTTL', hash) == -1 then
    redis.call('EXPIRE', list, ttl)
    redis.call('EXPIRE', hash, ttl)
    -- The user's index and usage total were kept (append.lua) for this session; they
    -- get a TTL again, which another unarchived session of the user's next append
    -- takes away again.
    for _, key in ipairs({index, usage}) do
      if redis.call('PTTL', key) == -1 then
        redis.call('EXPIRE', key, ttl)
      end
    end
  end
  result = {arch, seq}
end
if redis.call('GET', lock) == ARGV[1] then
  redis.call('DEL', lock)
end
return result
