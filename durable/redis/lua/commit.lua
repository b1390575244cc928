-- commit: Commit. Fenced, positioned, atomic write of a run by its lease
-- holder: appends events (or replaces the history), saves the record,
-- removes consumed inbox entries, and may release the lease.
-- KEYS: run hash, history list, inbox, changes, feed, archive, commits,
--   awaiting (one run's hash tag); the keys of a run that ends expire after the
--   retention, feed and archive included, and are kept again if the run is
--   retried; changes and commits exist only while a WatchRun or a
--   WatchCommits watches (see watch.lua) and keep the expiry it gives them
-- ARGV: [1] token, [2] expect, [3] new history (0|1), [4] release (0|1),
--   [5] updated, [6] status, [7] state: a JSON array of the record's
--   fields and values that each commit saves (step, wait, ...; see
--   record.go), [8] wake (ms, 0 = none),
--   [9] retention (ms, 0 = keep), [10] commit id, [11] event count n,
--   [12] what the run awaits ('' = nothing), [13 .. 12+n] events,
--   [13+n ..] consumed inbox entry ids
-- Reply: {'ok', inbox length, version, created (µs)}
--   | {'fenced' | 'conflict' | 'corrupt', wake, wake token, history length, list length}
--   | {'notfound'}
local run, history, inbox, changes, commits, awaiting = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7], KEYS[8]
local f = redis.call('HMGET', run, 'held', 'tok', 'hlen', 'wake', 'wt', 'st', 'cid', 'cr', 'ver', 'aw')
if not f[1] then
  return {'notfound'}
end
if f[7] == ARGV[10] then
  -- This commit was applied already: the client sent it again.
  return {'ok', redis.call('XLEN', inbox), tonumber(f[9]), f[8]}
end
if f[1] ~= '1' or f[2] ~= ARGV[1] then
  return {'fenced', f[4], f[5], f[3]}
end
if f[3] ~= ARGV[2] then
  return {'conflict', f[4], f[5], f[3]}
end
local n = tonumber(ARGV[11])
local length = tonumber(f[3])
if ARGV[3] == '1' then
  redis.call('DEL', history)
  redis.call('HINCRBY', run, 'gen', 1)
  length = 0
elseif n > 0 then
  -- Only a commit that appends needs the list to end where the record
  -- says: one without events saves the record whatever entries were
  -- written to the list outside the store, so a damaged run can park.
  local llen = redis.call('LLEN', history)
  if llen ~= length then
    return {'corrupt', f[4], f[5], f[3], llen}
  end
end
-- RPUSH takes the events a slice at a time: unpack has a limit.
for i = 13, 12 + n, 500 do
  redis.call('RPUSH', history, unpack(ARGV, i, math.min(i + 499, 12 + n)))
end
length = length + n
local pending = nil
if #ARGV >= 13 + n then
  for i = 13 + n, #ARGV do
    redis.call('XDEL', inbox, ARGV[i])
  end
  -- An empty stream still takes a few hundred bytes: the next Send makes
  -- another.
  pending = redis.call('XLEN', inbox)
  if pending == 0 then
    redis.call('DEL', inbox)
  end
  redis.call('HSET', run, 'inb', pending)
end


local aw = ''
if ARGV[12] ~= '' then
  redis.call('SET', awaiting, ARGV[12])
  aw = '1'
elseif f[10] == '1' then
  redis.call('DEL', awaiting)
end

local version = redis.call('HINCRBY', run, 'ver', 1)
redis.call('HSET', run, 'hlen', length, 'st', ARGV[6], 'upd', ARGV[5],
  'wake', ARGV[8], 'wt', ARGV[1], 'cid', ARGV[10], 'aw', aw, unpack(cjson.decode(ARGV[7])))
if ARGV[4] == '1' then
  redis.call('HSET', run, 'held', 0)
end
-- The commit moves the run on (backend.MovesOn) if it changes its status
-- or history, or leaves it in a status other than running: WatchRun
-- waits for those, and is woken through the changes stream if it exists;
-- WatchCommits for any commit, through the commits stream.
if ARGV[6] ~= f[6] or ARGV[3] == '1' or ARGV[6] ~= 'running' then
  redis.call('HSET', run, 'wv', version)
  if redis.call('EXISTS', changes) == 1 then
    redis.call('XADD', changes, 'MAXLEN', '1', '*', 'v', version)
  end
end
if redis.call('EXISTS', commits) == 1 then
  redis.call('XADD', commits, 'MAXLEN', '1', '*', 'v', version)
end

local retention = tonumber(ARGV[9])
if terminal[ARGV[6]] and retention > 0 then
  for _, key in ipairs(KEYS) do
    if key ~= changes and key ~= commits then
      redis.call('PEXPIRE', key, retention)
    end
  end
elseif terminal[f[6]] and not terminal[ARGV[6]] then
  for _, key in ipairs(KEYS) do
    if key ~= changes and key ~= commits then
      redis.call('PERSIST', key)
    end
  end
end
return {'ok', pending or redis.call('XLEN', inbox), version, f[8]}
