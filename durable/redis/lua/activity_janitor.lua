-- activity_janitor: the safety net of an activity queue. Claims entries
-- that stayed pending for min-idle (real time) and moves them to the end
-- of the queue, unless a deadline still stands for them (they were
-- delivered and are watched). Forgets consumers that have been idle long
-- with nothing pending.
-- KEYS: attempts stream, deadlines (one queue's hash tag)
-- ARGV: group, janitor consumer, min idle (ms), count, forget idle consumers after (ms)
-- Reply: the number of attempts queued again
local stream, deadlines = KEYS[1], KEYS[2]
local group = ARGV[1]
local ok, claimed = pcall(redis.call, 'XAUTOCLAIM', stream, group, ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
if not ok then
  -- No stream or no group yet: nothing to claim. Anything else (a command
  -- the user's ACL denies) is an error, not a silent pass.
  local err = type(claimed) == 'table' and claimed.err or tostring(claimed)
  if string.find(err, 'NOGROUP', 1, true) then
    return 0
  end
  return redis.error_reply(err)
end
local requeued = 0
for _, entry in ipairs(claimed[2]) do
  if entry and not redis.call('ZSCORE', deadlines, entry[1]) then
    requeued = requeued + readd(stream, group, entry[1])
  end
end
forget(stream, group, ARGV[2], tonumber(ARGV[5]))
return requeued
