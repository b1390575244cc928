-- activity_take: an activity queue's side of PollActivity. Moves the
-- attempts whose visibility timeout has passed to the end of the queue,
-- records the in-flight deadline of entries read by a blocking XREADGROUP,
-- reads up to count more attempts, and tells when the next deadline is due
-- and, when it reads nothing, which entry is next to be read.
-- KEYS: attempts stream, deadlines (one queue's hash tag)
-- ARGV: [1] group, [2] consumer ('' = read nothing), [3] count, [4] now (ms),
--   [5] visibility timeout (ms), [6] most deadlines to fire,
--   [7 ..] pairs of (entry id, '1') read already ('' for '1': not an attempt)
-- Reply: {attempts read: {id, attempt, ...}, next deadline or '', next entry id or ''}
--
-- The deadlines set holds the entry ids of delivered attempts, scored by
-- the time (ms) at which they are delivered again.
local stream, deadlines = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local now, visibility = tonumber(ARGV[4]), tonumber(ARGV[5])

-- The group, and the last entry it delivered. It reads from the start of
-- the stream, so that attempts pushed before it existed are read.
local last
if redis.call('EXISTS', stream) == 1 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local name, id
    for j = 1, #g, 2 do
      if g[j] == 'name' then
        name = g[j + 1]
      elseif g[j] == 'last-delivered-id' then
        id = g[j + 1]
      end
    end
    if name == group then
      last = id
    end
  end
end
if not last then
  redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  last = '0-0'
end

local due = redis.call('ZRANGEBYSCORE', deadlines, '-inf', ms(now), 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(due) do
  redis.call('ZREM', deadlines, id)
  readd(stream, group, id)
end

local function drop(id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end

for i = 7, #ARGV, 2 do
  if ARGV[i + 1] == '1' then
    redis.call('ZADD', deadlines, ms(now + visibility), ARGV[i])
  else
    drop(ARGV[i])
  end
end

local out = {}
local count = tonumber(ARGV[3])
if consumer ~= '' and count > 0 then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
  if read then
    for _, entry in ipairs(read[1][2]) do
      local id, fields, attempt = entry[1], entry[2], nil
      for j = 1, #fields, 2 do
        if fields[j] == 'a' then
          attempt = fields[j + 1]
        end
      end
      if attempt then
        redis.call('ZADD', deadlines, ms(now + visibility), id)
        out[#out + 1] = id
        out[#out + 1] = attempt
      else
        drop(id)
      end
    end
  end
end

local following = ''
if consumer == '' then
  local entry = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)[1]
  if entry then
    following = entry[1]
  end
end
local first = redis.call('ZRANGE', deadlines, 0, 0, 'WITHSCORES')
return {out, first[2] or '', following}
