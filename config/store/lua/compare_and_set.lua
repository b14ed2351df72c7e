-- Compare-and-set for JobStore.update(): the new value is written (with its index move, its
-- announcement and its event) only if the record is still what the caller read. One round
-- trip for the write instead of WATCH, MULTI and EXEC; a changed record makes the caller read
-- again.
-- KEYS[1] record, KEYS[2] old status index, KEYS[3] new status index,
-- KEYS[4] event stream (nightshift:events)
-- ARGV[1] expected JSON, ARGV[2] new JSON, ARGV[3] record TTL (s), ARGV[4] job id,
-- ARGV[5] created_at (score), ARGV[6] the job's events channel, ARGV[7] event JSON,
-- ARGV[8] event kind, ARGV[9] the stream's cap (MAXLEN ~)
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
-- A write that changed nothing (a cancel of a finished job) is no event: the stream is history.
if ARGV[1] ~= ARGV[2] then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*',
    'job', ARGV[4], 'kind', ARGV[8], 'data', ARGV[7])
end
return 1
