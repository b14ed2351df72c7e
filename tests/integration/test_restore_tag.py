"""The sweep puts a dead worker's message back with a fresh delivery tag (issue 11).

Real Redis and kombu's own Redis channel: a message is delivered (unacked), restored by the
sweep's restore, delivered again, and then the first holder, which only slept, acks its old
tag. The second delivery must still be in `unacked`, or its worker dying next would strand
the job with nothing left to restore.
"""

from __future__ import annotations

from celery import Celery

from config.celery_conf import make_celery
from config.settings import Settings
from worker.hooks.leases import restore_as_new_delivery


def test_a_late_ack_of_the_old_delivery_leaves_the_restored_copy_held(settings: Settings) -> None:
    app: Celery = make_celery(settings)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        queue = settings.default_queue
        channel.queue_declare(queue=queue)
        channel.basic_publish(channel.prepare_message("job"), exchange="", routing_key=queue)
        first = channel.basic_get(queue, no_ack=False)
        old_tag = first.delivery_tag
        assert channel.client.hexists(channel.qos.unacked_key, old_tag)

        assert restore_as_new_delivery(channel, old_tag)
        assert not restore_as_new_delivery(channel, old_tag)  # nothing left to restore twice
        second = channel.basic_get(queue, no_ack=False)
        assert second is not None and second.body == first.body
        assert second.delivery_tag != old_tag

        channel.qos.ack(old_tag)  # the sleeper wakes up and acknowledges its delivery
        assert channel.client.hexists(channel.qos.unacked_key, second.delivery_tag)
        channel.qos.ack(second.delivery_tag)
        assert channel.client.hlen(channel.qos.unacked_key) == 0
