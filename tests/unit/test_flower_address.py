"""What `nightshift flower` prints about where it listens and how strong its login is.

No services: the URL and the warning are worked out from the settings alone (the real
process is asked in tests/integration/test_flower_login.py).
"""

from __future__ import annotations

import pytest

from config.settings import Settings
from producer.commands.flower import flower_url, weak_login_warning


def flower_settings(address: str, password: str, user: str = "night") -> Settings:
    return Settings(flower_address=address, flower_user=user, flower_password=password)


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:5555/"),
        ("192.168.1.20", "http://192.168.1.20:5555/"),
        ("0.0.0.0", "http://0.0.0.0:5555/ (all interfaces)"),
        ("", "http://0.0.0.0:5555/ (all interfaces)"),
        ("::", "http://[::]:5555/ (all interfaces)"),
        ("::1", "http://[::1]:5555/"),
    ],
)
def test_the_printed_url_is_the_address_flower_binds(address: str, url: str) -> None:
    assert flower_url(flower_settings(address, "a-long-owl-passphrase")) == url


@pytest.mark.parametrize(
    ("address", "password", "user", "warned"),
    [
        ("0.0.0.0", "owl", "night", True),
        ("0.0.0.0", "elevenchars", "night", True),
        ("0.0.0.0", "twelve-chars", "night", False),
        ("0.0.0.0", "the-user-name-itself", "the-user-name-itself", True),
        ("192.168.1.20", "owl", "night", True),
        ("flower.lan", "owl", "night", True),
        ("127.0.0.1", "owl", "night", False),
        ("127.0.0.2", "owl", "night", False),
        ("::1", "owl", "night", False),
        ("localhost", "owl", "night", False),
    ],
)
def test_a_weak_password_is_warned_of_only_off_loopback(
    address: str, password: str, user: str, warned: bool
) -> None:
    warning = weak_login_warning(flower_settings(address, password, user), no_auth=False)

    assert (warning is not None) is warned
    assert warning is None or password not in warning
