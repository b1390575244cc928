-- put: create or replace one item, if its vector has the namespace's
-- dimension, atomically with that check.
-- KEYS: items, keys, meta, log. ARGV: key, encoded item, dimension, tag
-- of this write (8 bytes), most entries of the log.
-- Returns {1, version} or, for a dimension mismatch, {0, the dimension}.
local dim = redis.call('HGET', KEYS[3], 'dim')
if dim and dim ~= ARGV[3] then
  return {0, dim}
end
local value = ARGV[2]
local old = redis.call('HGET', KEYS[1], ARGV[1])
-- A replaced item keeps its CreatedAt: bytes 2 to 9 of both encodings,
-- after the format byte.
if old and #old >= 17 and string.byte(old, 1) == string.byte(value, 1) then
  value = string.sub(value, 1, 1) .. string.sub(old, 2, 9) .. string.sub(value, 10)
end
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
local version = redis.call('HINCRBY', KEYS[3], 'ver', 1)
redis.call('HSET', KEYS[3], 'dim', ARGV[3], 'tag', ARGV[4])
redis.call('RPUSH', KEYS[4], ARGV[4] .. ARGV[1])
local cap = math.min(tonumber(ARGV[5]), redis.call('HLEN', KEYS[1]) + 16)
redis.call('LTRIM', KEYS[4], -cap, -1)
return {1, version}
