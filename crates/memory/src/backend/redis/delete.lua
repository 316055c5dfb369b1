-- Delete every key of one session (both layouts), its index entry and its share of the
-- user's usage (the usage total itself with the user's last session).
-- KEYS: list, hash, index, usage, v1log, v1meta, v1ids   ARGV: session
-- Returns 1 when the session existed, else 0.
local k = session_keys()
local existed = 0
if call('EXISTS', k.list, k.hash, k.v1log, k.v1meta) > 0 then
  existed = 1
end
local bytes = (tonumber(call('HGET', k.hash, 'bytes')) or 0)
  + (tonumber(call('HGET', k.v1meta, 'bytes')) or 0)
call('DEL', k.list, k.hash, k.v1log, k.v1meta, k.v1ids)
call('ZREM', k.index, ARGV[1])
if call('EXISTS', k.index) == 0 then
  -- The user's last session: nothing of theirs stays behind.
  call('DEL', k.usage)
elseif bytes > 0 and call('EXISTS', k.usage) == 1 then
  call('HINCRBY', k.usage, 'bytes', -bytes)
end
return existed
