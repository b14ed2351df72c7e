-- Create one job record, its index entries and its event together, or nothing (the id is taken).
-- KEYS[1] record (nightshift:job:<id>), KEYS[2] all-jobs index, KEYS[3] status index,
-- KEYS[4] event stream (nightshift:events)
-- ARGV[1] record JSON, ARGV[2] record TTL (s), ARGV[3] created_at (score), ARGV[4] job id,
-- ARGV[5] event kind, ARGV[6] event JSON, ARGV[7] the stream's cap (MAXLEN ~)
-- Returns 1 when created, 0 when the record already existed.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*',
    'job', ARGV[4], 'kind', ARGV[5], 'data', ARGV[6])
  return 1
end
return 0
