-- take: the partition's side of Poll. Fires the deadlines that are due,
-- records the in-flight deadline of tasks read by a blocking XREADGROUP,
-- reads up to count more tasks, and tells when the next deadline is due.
-- KEYS: tasks stream, deadlines, queued set (one partition's hash tag)
-- ARGV: [1] group, [2] consumer ('' = read nothing), [3] count, [4] now (ms),
--   [5] visibility timeout (ms), [6] most deadlines to fire,
--   [7 ..] pairs of (entry id, run id) read already ('' run id: not a task)
-- Reply: {tasks: {id, run, ...}, claims: {member, claimed score, ...}, next deadline or ''}
--
-- Deadline kinds: c (CreateRun's safety net) and t (a task's visibility
-- timeout) fire here. w (a wake time) and l (a lease's expiry) hold only
-- if the run's record, in another slot, still says so; they are claimed:
-- pushed back by a visibility timeout (plus half a millisecond, which no
-- writer uses, so that settle can tell whether a writer moved them since)
-- and returned, for the caller to read the record and settle them.
local tasks, deadlines, queued = KEYS[1], KEYS[2], KEYS[3]
local group, consumer = ARGV[1], ARGV[2]
local now, visibility = tonumber(ARGV[4]), tonumber(ARGV[5])

-- The group reads from the start of the stream, so that tasks added before
-- it existed are not skipped.
if redis.call('EXISTS', tasks) == 0 then
  redis.call('XGROUP', 'CREATE', tasks, group, '0', 'MKSTREAM')
end

local claims = {}
local due = redis.call('ZRANGEBYSCORE', deadlines, '-inf', ms(now), 'LIMIT', 0, tonumber(ARGV[6]))
for _, m in ipairs(due) do
  local kind, run, extra = parse(m)
  if kind == 'l' or kind == 'w' then
    local claimed = string.format('%.1f', now + visibility + 0.5)
    redis.call('ZADD', deadlines, claimed, m)
    claims[#claims + 1] = m
    claims[#claims + 1] = claimed
  else
    redis.call('ZREM', deadlines, m)
    if kind == 't' then
      if redis.call('XACK', tasks, group, extra) == 1 then
        redis.call('XDEL', tasks, extra)
        enqueue(tasks, queued, run)
      end
    elseif kind == 'c' then
      enqueue(tasks, queued, run)
    end
  end
end

local out = {}
local function deliver(id, run)
  if run == '' then
    -- Not a task: drop it.
    redis.call('XACK', tasks, group, id)
    redis.call('XDEL', tasks, id)
    return
  end
  redis.call('SREM', queued, run)
  redis.call('ZADD', deadlines, ms(now + visibility), member('t', run, id))
  out[#out + 1] = id
  out[#out + 1] = run
end

for i = 7, #ARGV, 2 do
  deliver(ARGV[i], ARGV[i + 1])
end

local count = tonumber(ARGV[3])
if consumer ~= '' and count > 0 then
  local ok, read = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', tasks, '>')
  if not ok then
    -- The stream exists without the group: create it and read again.
    redis.call('XGROUP', 'CREATE', tasks, group, '0')
    read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', tasks, '>')
  end
  if read then
    for _, entry in ipairs(read[1][2]) do
      local run = ''
      local fields = entry[2]
      for j = 1, #fields, 2 do
        if fields[j] == 'r' then
          run = fields[j + 1]
        end
      end
      deliver(entry[1], run)
    end
  end
end

local first = redis.call('ZRANGE', deadlines, 0, 0, 'WITHSCORES')
return {out, claims, first[2] or ''}
