-- create: CreateRun. Creates the run unless it exists.
-- KEYS: run hash, history, inbox, changes, archive (one run's hash tag)
-- ARGV: meta JSON, status, state JSON, created (µs), updated, first event
-- Reply: {'created'} or {'exists', <HGETALL of the run>}
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGETALL', KEYS[1])}
end
-- What an expired run left behind is not part of the new one.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'st', ARGV[2], 'state', ARGV[3], 'cr', ARGV[4],
  'upd', ARGV[5], 'ver', 1, 'wv', 1, 'hlen', 1, 'gen', 0, 'tok', 0, 'held', 0, 'lw', '', 'lexp', 0,
  'wake', 0, 'wt', 0, 'cid', '', 'sid', '')
redis.call('RPUSH', KEYS[2], ARGV[6])
return {'created'}
