-- create.lua for many records in one call (a batch submit's chunk): thousands of EVALSHAs
-- cost more to encode than to run. Key names travel in ARGV, which is fine for the single
-- Redis this project uses (no cluster slots to route).
-- KEYS: none
-- ARGV[1] record TTL (s), ARGV[2] all-jobs index, ARGV[3] event stream, ARGV[4] the stream's
-- cap (MAXLEN ~), ARGV[5] event kind, then per record six values:
--   record key, record JSON, created_at (score), job id, status index, event JSON
-- Returns one flag per record: 1 created, 0 the id was taken (nothing written for it).
local out = {}
for i = 6, #ARGV, 6 do
  local new = redis.call('SET', ARGV[i], ARGV[i + 1], 'NX', 'EX', ARGV[1])
  if new then
    redis.call('ZADD', ARGV[2], ARGV[i + 2], ARGV[i + 3])
    redis.call('ZADD', ARGV[i + 4], ARGV[i + 2], ARGV[i + 3])
    redis.call('XADD', ARGV[3], 'MAXLEN', '~', ARGV[4], '*',
      'job', ARGV[i + 3], 'kind', ARGV[5], 'data', ARGV[i + 5])
  end
  out[#out + 1] = new and 1 or 0
end
return out
