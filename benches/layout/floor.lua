-- The lean append's commands with none of its logic: the floor under any Lua script that
-- keeps what a turn keeps (benches/layout/run times it through redis-benchmark). The
-- figures and two buckets read (HMGET), the user's byte total raised (HINCRBY), the two
-- messages pushed (RPUSHX), the figures and buckets written back (HSET), the session
-- index touched (ZADD), the TTL read for the reply (PTTL).
-- KEYS: list, hash, index, usage. ARGV as turn.lua's: now_ms, seq, buckets, max_messages,
-- session, quota_session_bytes, quota_user_bytes, auto_title, tier, ttl_secs, two values.
local call = redis.call
local m = call('HMGET', KEYS[2], 'seq', 'count', 'bytes', 'created_at', 'trimmed', 'title',
  'auto', 'arch', 'converting', 'lh', '#a', '#b')
call('HINCRBY', KEYS[4], 'bytes', 600)
call('RPUSHX', KEYS[1], ARGV[11], ARGV[12])
call('HSET', KEYS[2], 'updated_at', ARGV[1], 'count', m[2], 'bytes', m[3], 'seq', m[1],
  '#a', 'aaaaaaaaaaaaaaaa', '#b', 'bbbbbbbbbbbbbbbb')
call('ZADD', KEYS[3], ARGV[1], ARGV[5])
local pttl = call('PTTL', KEYS[2])
return {m[2], m[3], m[4], ARGV[1], m[1], 0, pttl, 0, false, 256, 11, 12}
