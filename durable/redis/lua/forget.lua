-- forget: ListRuns. Removes index entries that named runs they no longer
-- apply to, unless a commit has scored them again since they were read.
-- KEYS: one partition's index (a sorted set)
-- ARGV: member, score pairs (the score as it was read)
-- Reply: the number of entries removed
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
