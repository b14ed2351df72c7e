-- Note that one job of a batch ended. SADD is idempotent per job, so a job that ends twice
-- is counted once, and only the add that makes the set full triggers the report.
-- KEYS[1] ended set (nightshift:batch:<id>:ended), KEYS[2] batch hash (field `total`),
-- KEYS[3] the notification outbox stream (nightshift:outbox)
-- ARGV[1] job id, ARGV[2] TTL of the ended set (s), ARGV[3] batch id
-- Returns 1 for exactly the call that ends the batch (and bumps `reports`), else 0. That call
-- also puts the batch's "batch finished" event in the outbox, in the same step: a worker that
-- dies right after cannot lose it, and no other call can write it again.
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[2], 'total') or '-1')
if redis.call('SCARD', KEYS[1]) == total then
  local reports = redis.call('HINCRBY', KEYS[2], 'reports', 1)
  local event = 'batch-finished:' .. ARGV[3] .. ':' .. reports
  redis.call('XADD', KEYS[3], '*', 'id', event, 'kind', 'batch.finished', 'subject', ARGV[3])
  return 1
end
return 0
