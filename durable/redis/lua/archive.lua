-- archive: PutBlobs. Writes blobs of a run, each under its key unless the
-- key holds one already, and gives the archive the expiry of the run's
-- record: none while the run is kept, the record's once it ended.
-- KEYS: run hash, archive (one run's hash tag)
-- ARGV: key 1, blob 1, key 2, blob 2, ...
-- Reply: {'ok', blobs written} | {'notfound'}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'notfound'}
end
local written = 0
for i = 1, #ARGV, 2 do
  written = written + redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
end
-- PTTL gives -1 for a key that does not expire.
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
elseif ttl == -1 then
  redis.call('PERSIST', KEYS[2])
end
return {'ok', written}
