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
-- there already (the queued set holds the runs with a waiting task).
local function enqueue(tasks, queued, run)
  if redis.call('SADD', queued, run) == 1 then
    redis.call('XADD', tasks, '*', 'r', run)
  end
end

local terminal = {completed = true, failed = true, canceled = true}
