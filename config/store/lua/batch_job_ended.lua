-- Note that one job of a batch ended. SADD is idempotent per job, so a job that ends twice
-- is counted once, and only the add that makes the set full triggers the report.
-- KEYS[1] ended set (nightshift:batch:<id>:ended), KEYS[2] batch hash (field `total`)
-- ARGV[1] job id, ARGV[2] TTL of the ended set (s)
-- Returns 1 for exactly the call that ends the batch (and bumps `reports`), else 0.
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[2], 'total') or '-1')
if redis.call('SCARD', KEYS[1]) == total then
  redis.call('HINCRBY', KEYS[2], 'reports', 1)
  return 1
end
return 0
