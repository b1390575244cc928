-- activity_ack: AckActivity, and handing a read attempt back. Removes the
-- attempt's deadline; acknowledges and deletes its entry, or, to hand it
-- back, moves it to the end of the queue if it is still pending.
-- KEYS: attempts stream, deadlines (one queue's hash tag)
-- ARGV: group, entry id, hand back ('1') or acknowledge ('0')
-- Reply: 1 if the entry was pending, else 0
redis.call('ZREM', KEYS[2], ARGV[2])
if ARGV[3] == '1' then
  return readd(KEYS[1], ARGV[1], ARGV[2])
end
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
