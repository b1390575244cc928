-- Helpers shared by the scripts; scripts.go puts this file in front of each.

-- ms formats a whole number of milliseconds (or a count) without an exponent.
local function ms(x)
  return string.format('%d', x)
end

-- parse splits a deadline member "<kind>:<len>:<run id>:<extra>".
local function parse(m)
  local kind = string.sub(m, 1, 1)
  local colon = string.find(m, ':', 3, true)
  if string.sub(m, 2, 2) ~= ':' or not colon then
    return nil
  end
  local n = tonumber(string.sub(m, 3, colon - 1))
  if not n then
    return nil
  end
  return kind, string.sub(m, colon + 1, colon + n), string.sub(m, colon + n + 2)
end

-- member builds a deadline member; see parse.
local function member(kind, run, extra)
  return kind .. ':' .. #run .. ':' .. run .. ':' .. extra
end

-- enqueue adds a task for run to the partition's stream unless one waits
-- there already (the queued set holds the runs with a waiting task), and
-- returns whether it did.
local function enqueue(tasks, queued, run)
  if redis.call('SADD', queued, run) == 1 then
    redis.call('XADD', tasks, '*', 'r', run)
    return true
  end
  return false
end

-- readd moves a delivered entry of an activity queue to the end of its
-- stream if it is still pending: acknowledges and deletes it and adds a
-- copy, which is delivered again. It returns 1 if it was pending, else 0.
local function readd(stream, group, id)
  local entry = redis.call('XRANGE', stream, id, id)[1]
  local acked = redis.call('XACK', stream, group, id)
  if acked == 1 then
    redis.call('XDEL', stream, id)
    if entry then
      redis.call('XADD', stream, '*', unpack(entry[2]))
    end
  end
  return acked
end

-- forget deletes the consumers of a stream's group that have nothing
-- pending and have been idle for more than idle ms, except keep.
local function forget(stream, group, keep, idle)
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
    local info = {}
    for j = 1, #c, 2 do
      info[c[j]] = c[j + 1]
    end
    if info['pending'] == 0 and info['idle'] > idle and info['name'] ~= keep then
      redis.call('XGROUP', 'DELCONSUMER', stream, group, info['name'])
    end
  end
end

local terminal = {completed = true, failed = true, canceled = true}
