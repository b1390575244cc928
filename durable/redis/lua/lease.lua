-- lease: Lease. Takes the run's lease for a worker, or extends it.
-- KEYS: run hash, inbox (one run's hash tag)
-- ARGV: worker, now (ms), ttl (ms)
-- Reply: {'ok', token, inbox length, taken over (1: from an expired lease)}
--      | {'held', holder} | {'notfound'}
local f = redis.call('HMGET', KEYS[1], 'held', 'lw', 'lexp', 'tok')
if not f[1] then
  return {'notfound'}
end
local now = tonumber(ARGV[2])
local live = f[1] == '1' and now < tonumber(f[3])
if live and f[2] ~= ARGV[1] then
  return {'held', f[2]}
end
local expires = ms(now + tonumber(ARGV[3]))
local token = tonumber(f[4])
local takenOver = 0
if live then
  redis.call('HSET', KEYS[1], 'lexp', expires)
else
  if f[1] == '1' then
    takenOver = 1
  end
  token = redis.call('HINCRBY', KEYS[1], 'tok', 1)
  redis.call('HSET', KEYS[1], 'held', 1, 'lw', ARGV[1], 'lexp', expires)
end
return {'ok', token, redis.call('XLEN', KEYS[2]), takenOver}
