-- Add a finished job to the Prometheus counters once (a redelivered job is not counted
-- again), in one round trip.
-- KEYS[1] counted marker (nightshift:metrics:counted:<id>), KEYS[2] counters hash
-- ARGV[1] marker TTL (s), then field, amount pairs (HINCRBYFLOAT)
-- Returns 1 when counted, 0 when the job had been counted before.
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) then
  for i = 2, #ARGV, 2 do
    redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  return 1
end
return 0
