-- mark: MarkExported. Records that the spans of a run's history were
-- exported up to a position, as "generation:position" in field sx, if the
-- run is in that generation and not marked further already.
-- KEYS: run hash
-- ARGV: generation, position
-- Reply: 1 if the mark was recorded, else 0
local f = redis.call('HMGET', KEYS[1], 'gen', 'sx')
if f[1] ~= ARGV[1] then
  return 0 -- gone, or in another history
end
local pos = tonumber(ARGV[2])
if f[2] then
  local gen, at = string.match(f[2], '^(%d+):(%d+)$')
  if gen == ARGV[1] and tonumber(at) >= pos then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'sx', ARGV[1] .. ':' .. ARGV[2])
return 1
