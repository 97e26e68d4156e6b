-- Appends an entry and gives the stream its lifetime again, in one step: a stream that gets
-- entries never goes without one.
-- KEYS[1]: the stream. ARGV[1]: the lifetime in ms, ARGV[2]: the payload, ARGV[3...]: XADD's
-- trimming arguments (MAXLEN ~ n, or MINID ~ id), if any.
local xadd = { 'XADD', KEYS[1] }
for i = 3, #ARGV do xadd[#xadd + 1] = ARGV[i] end
xadd[#xadd + 1] = '*'
xadd[#xadd + 1] = 'd'
xadd[#xadd + 1] = ARGV[2]
local id = redis.call(unpack(xadd))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return id
