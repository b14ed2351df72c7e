-- Compare-and-set for JobStore.update(): the new value is written (with its index move and
-- its announcement) only if the record is still what the caller read. One round trip for
-- the write instead of WATCH, MULTI and EXEC; a changed record makes the caller read again.
-- KEYS[1] record, KEYS[2] old status index, KEYS[3] new status index
-- ARGV[1] expected JSON, ARGV[2] new JSON, ARGV[3] record TTL (s), ARGV[4] job id,
-- ARGV[5] created_at (score), ARGV[6] the job's events channel, ARGV[7] event JSON
-- Returns 1 when written, 0 when the record changed (or vanished) meanwhile.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if KEYS[2] ~= KEYS[3] then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
