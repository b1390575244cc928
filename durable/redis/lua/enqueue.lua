-- enqueue: queues a task for a run, and removes a deadline that stood in
-- for it (CreateRun's safety deadline).
-- KEYS: tasks stream, queued set, deadlines (one partition's hash tag)
-- ARGV: run id ('' = queue nothing), deadline member to remove ('' = none)
-- Reply: 1 if it queued the run, else 0
local queued = 0
if ARGV[1] ~= '' and enqueue(KEYS[1], KEYS[2], ARGV[1]) then
  queued = 1
end
if ARGV[2] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return queued
