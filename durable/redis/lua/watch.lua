-- watch: WatchRun's and WatchCommits' look at the run before they block.
-- Says whether the run's record changed, as the caller waits for, after
-- its version; if not, makes sure the run has the stream the caller
-- blocks on, which commits append to (only while it exists: see
-- commit.lua), and gives it an expiry, so that a run nobody watches has
-- none.
-- KEYS: run hash, changes or commits stream (one run's hash tag)
-- ARGV: [1] version, [2] how long the stream is kept (ms), [3] the
--   record's field that counts what the caller waits for: 'wv' (the
--   version of the last commit that moved the run on) or 'ver' (any)
-- Reply: {'moved'} | {'wait', id of the stream's last entry, to block after}
--   | {'notfound'}
local f = redis.call('HMGET', KEYS[1], 'ver', ARGV[3])
if not f[1] then
  return {'notfound'}
end
local version = tonumber(ARGV[1])
if tonumber(f[2] or 0) > version or tonumber(f[1]) < version then
  return {'moved'}
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
local id
if last then
  id = last[1]
else
  id = redis.call('XADD', KEYS[2], '*', 'v', f[1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {'wait', id}
