-- janitor: the safety net of the task queue. Claims entries that stayed
-- pending for min-idle (real time) and queues their runs again, unless an
-- in-flight deadline still stands for them (they were delivered and are
-- watched). Forgets consumers that have been idle long with nothing pending.
-- KEYS: tasks stream, deadlines, queued set (one partition's hash tag)
-- ARGV: group, janitor consumer, min idle (ms), count, forget idle consumers after (ms)
-- Reply: the number of runs queued again
local tasks, deadlines, queued = KEYS[1], KEYS[2], KEYS[3]
local group = ARGV[1]
local ok, claimed = pcall(redis.call, 'XAUTOCLAIM', tasks, group, ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
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
  if entry then
    local id, fields, run = entry[1], entry[2], nil
    for j = 1, #fields, 2 do
      if fields[j] == 'r' then
        run = fields[j + 1]
      end
    end
    if not run then
      redis.call('XACK', tasks, group, id)
      redis.call('XDEL', tasks, id)
    elseif not redis.call('ZSCORE', deadlines, member('t', run, id)) then
      redis.call('XACK', tasks, group, id)
      redis.call('XDEL', tasks, id)
      -- Its delivery was never recorded, so the run's queued mark, if it
      -- has one, is this entry's (no other is added while it stands):
      -- clear it, or enqueue would add nothing, and nor would any later
      -- enqueue of the run.
      redis.call('SREM', queued, run)
      enqueue(tasks, queued, run)
      requeued = requeued + 1
    end
  end
end

forget(tasks, group, ARGV[2], tonumber(ARGV[5]))
return requeued
