-- create: CreateRun. Creates the run unless it exists.
-- KEYS: run hash, history, inbox, changes, archive, awaiting (one run's
--   hash tag); and, on a single server only (where keys of two hash tags
--   may meet in a script), the run's partition's tasks stream and queued
--   set, to queue the run it creates
-- ARGV: [1] first event, [2 ..] the record's fields and values (see
--   record.go), to which it adds the bookkeeping fields
-- Reply: {'created'} or {'exists', <HGETALL of the run>}
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGETALL', KEYS[1])}
end
-- What an expired run left behind is not part of the new one.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[1], 'ver', 1, 'wv', 1, 'hlen', 1, 'gen', 0, 'tok', 0, 'held', 0, 'lw', '',
  'lexp', 0, 'wake', 0, 'wt', 0, 'cid', '', 'sid', '', unpack(ARGV, 2))
redis.call('RPUSH', KEYS[2], ARGV[1])
if #KEYS >= 8 then
  enqueue(KEYS[7], KEYS[8], redis.call('HGET', KEYS[1], 'id'))
end
return {'created'}
