-- Create one job record and its index entries together, or nothing (the id is taken).
-- KEYS[1] record (nightshift:job:<id>), KEYS[2] all-jobs index, KEYS[3] status index
-- ARGV[1] record JSON, ARGV[2] record TTL (s), ARGV[3] created_at (score), ARGV[4] job id
-- Returns 1 when created, 0 when the record already existed.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  return 1
end
return 0
