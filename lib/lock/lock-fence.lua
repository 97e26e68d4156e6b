-- Redlock: raises the fences of a lock's keys to at least the token just handed out, on a server
-- of the majority that granted it. Any later majority shares a server with this one, so its
-- token comes out higher. KEYS: the fence keys. ARGV[1]: the token.
local token = tonumber(ARGV[1])
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') < token then redis.call('SET', KEYS[i], token) end
end
return 1
