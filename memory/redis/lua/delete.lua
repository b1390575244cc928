-- delete: remove one item. The last item's delete removes the namespace's
-- every key, its dimension with them.
-- KEYS: items, keys, meta, log. ARGV: key, tag of this write (8 bytes),
-- most entries of the log.
-- Returns 1 if there was an item, else 0.
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local n = redis.call('HLEN', KEYS[1])
if n == 0 then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  return 1
end
redis.call('HINCRBY', KEYS[3], 'ver', 1)
redis.call('HSET', KEYS[3], 'tag', ARGV[2])
redis.call('RPUSH', KEYS[4], ARGV[2] .. ARGV[1])
redis.call('LTRIM', KEYS[4], -math.min(tonumber(ARGV[3]), n + 16), -1)
return 1
