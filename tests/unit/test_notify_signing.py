"""Webhook signatures: HMAC-SHA256 over the exact body, as a receiver checks it."""

from __future__ import annotations

import hashlib
import hmac

from worker.notify.webhook import sign, verify


def test_the_signature_is_hmac_sha256_of_the_body_in_hex() -> None:
    body = b'{"id":"job-failed:j1:1","event":"job.failed"}'
    expected = hmac.new(b"k" * 32, body, hashlib.sha256).hexdigest()
    assert sign(body, "k" * 32) == f"sha256={expected}"


def test_a_receiver_refuses_another_body_or_another_secret() -> None:
    body = b'{"id":"a"}'
    header = sign(body, "right-secret-0123456789")
    assert verify(body, "right-secret-0123456789", header)
    assert not verify(b'{"id":"b"}', "right-secret-0123456789", header)
    assert not verify(body, "wrong-secret-0123456789", header)
    assert not verify(body, "right-secret-0123456789", "sha256=" + "0" * 64)
