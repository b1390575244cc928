-- ack: Ack, and handing a polled task back. Acknowledges and deletes the
-- task's entry and removes its in-flight deadline; to hand it back, queues
-- its run again if the entry was still pending.
-- KEYS: tasks stream, deadlines, queued set (one partition's hash tag)
-- ARGV: group, entry id, in-flight deadline member, run id to queue again ('' = none)
-- Reply: 1 if the entry was pending, else 0
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
if acked == 1 and ARGV[4] ~= '' then
  enqueue(KEYS[1], KEYS[3], ARGV[4])
end
return acked
