-- settle: applies the caller's verdicts on lease deadlines that take
-- claimed, unless the deadline changed since (its worker took or extended
-- a lease again): then it stays as it is now.
-- KEYS: tasks stream, deadlines, queued set (one partition's hash tag)
-- ARGV: triples (member, claimed score, verdict): verdict 'queue' queues
--   the run and removes the deadline, 'drop' removes it, a number moves it
--   to that time (ms)
-- Reply: the number of runs queued
local queuedRuns = 0
for i = 1, #ARGV, 3 do
  local m, claimed, verdict = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local score = redis.call('ZSCORE', KEYS[2], m)
  if score and tonumber(score) == tonumber(claimed) then
    if verdict == 'queue' then
      redis.call('ZREM', KEYS[2], m)
      local _, run = parse(m)
      if run then
        enqueue(KEYS[1], KEYS[3], run)
        queuedRuns = queuedRuns + 1
      end
    elseif verdict == 'drop' then
      redis.call('ZREM', KEYS[2], m)
    else
      redis.call('ZADD', KEYS[2], verdict, m)
    end
  end
end
return queuedRuns
