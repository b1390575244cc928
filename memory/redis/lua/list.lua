-- list: a page of items in key order.
-- KEYS: keys, items. ARGV: the key after which the page starts ("" for
-- the first page), most items.
-- Returns {key, value, key, value, ...}; a value is false (nil) if the
-- key index names a key the items do not have.
local from = '-'
if ARGV[1] ~= '' then
  from = '(' .. ARGV[1]
end
local out = {}
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], from, '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[2]))) do
  out[#out + 1] = key
  out[#out + 1] = redis.call('HGET', KEYS[2], key)
end
return out
