-- changes: what a cache at (version, tag) must do to catch up with the
-- namespace: nothing, read the items that the log says changed since,
-- or read everything.
-- KEYS: meta, log, items. ARGV: the cache's version (0 for none) and the
-- tag of the write that made it.
-- Returns {0} if the namespace has no items, else {version, tag, items,
-- dimension, mode, ...} with mode "fresh", "full", or "changes" followed
-- by {key, value or false (deleted)} for each key written since.
local meta = redis.call('HMGET', KEYS[1], 'ver', 'tag', 'dim')
if not meta[1] then
  return {0}
end
local version = tonumber(meta[1])
local n = redis.call('HLEN', KEYS[3])
local out = {version, meta[2], n, tonumber(meta[3])}
local have = tonumber(ARGV[1])
if have == version and meta[2] == ARGV[2] then
  out[5] = 'fresh'
  return out
end
-- The log's entry of the cache's version must carry the cache's tag: else
-- the namespace was emptied and filled again, or lost writes in a
-- failover, since the cache read it.
local back = version - have
if have < 1 or back < 1 or back > n or back + 1 > redis.call('LLEN', KEYS[2]) or
    string.sub(redis.call('LINDEX', KEYS[2], -(back + 1)), 1, 8) ~= ARGV[2] then
  out[5] = 'full'
  return out
end
out[5] = 'changes'
local seen = {}
for _, entry in ipairs(redis.call('LRANGE', KEYS[2], -back, -1)) do
  local key = string.sub(entry, 9)
  if not seen[key] then
    seen[key] = true
    out[#out + 1] = key
    out[#out + 1] = redis.call('HGET', KEYS[3], key)
  end
end
return out
