"""Notifications: events from the outbox (config/store/outbox.py) delivered to their targets.

`events` puts a failed job's event in the outbox (a batch's end is written by the script that
counts it); `payload` turns an event into what is sent and to whom; `webhook` and `channels`
send one try (a signed JSON POST; apprise for every other scheme); `deliver` retries one
target and returns its outcome; `sender` is the loop every worker's parent runs
(worker/hooks/notify.py), reading the outbox through one consumer group.
"""
