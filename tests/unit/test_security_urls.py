"""Redis over TLS and passwords in URLs, without a server: a rediss:// URL builds a TLS broker
and backend without connecting, and every shown URL is redacted. The TLS and password-protected
redis-servers with real workers are tests/integration/test_security.py.
"""

from __future__ import annotations

from config.celery_conf import make_celery
from config.settings import Settings, redact_url


def test_tls_urls_are_accepted_and_passwords_redacted() -> None:
    url = "rediss://:hunter2@redis.example.com:6380/0?ssl_cert_reqs=required"
    settings = Settings(redis_url=url)
    app = make_celery(settings)

    assert app.conf.broker_url.startswith("rediss://")
    assert type(app.backend).__name__ == "RedisBackend"  # builds TLS options, no connect
    assert settings.redis_url_redacted == (
        "rediss://:***@redis.example.com:6380/0?ssl_cert_reqs=required"
    )
    assert redact_url("redis://user:p%40ss@h:1/0") == "redis://user:***@h:1/0"
    assert "hunter2" not in app.connection_for_write().as_uri()
