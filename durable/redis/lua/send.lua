-- send: Send. Appends an event to the run's inbox.
-- KEYS: run hash, inbox (one run's hash tag)
-- ARGV: event, send id (unique per call, so that a retried call adds nothing)
-- Reply: {'ok', entry id} | {'notfound'}
local f = redis.call('HMGET', KEYS[1], 'held', 'sid', 'sent')
if not f[1] then
  return {'notfound'}
end
if f[2] == ARGV[2] then
  return {'ok', f[3]}
end
local id = '*'
if f[3] and redis.call('EXISTS', KEYS[2]) == 0 then
  -- A commit deletes the inbox it empties: go on after the last id it
  -- gave, so that no id names two entries.
  local last, seq = string.match(f[3], '^(%d+)-(%d+)$')
  if last then
    id = last .. '-' .. ms(tonumber(seq) + 1)
  end
end
id = redis.call('XADD', KEYS[2], id, 'e', ARGV[1])
redis.call('HSET', KEYS[1], 'sid', ARGV[2], 'sent', id)
redis.call('HINCRBY', KEYS[1], 'inb', 1)
-- A run that ended expires with all its keys.
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {'ok', id}
