"""Notification targets: which URLs a job, a batch or the settings may name, and how they show.

A target is a webhook (`http://`, `https://`: a signed JSON POST, worker/notify/webhook.py) or
an apprise URL (`ntfy://`, `pover://`, `slack://`, `discord://`, `mailto://`, `macosx://`...).

Who wrote it decides the rules. A job or a batch file comes from anyone who can submit, so
its targets must not make a worker probe the network it sits in: a webhook's host may not be
loopback, private, link-local or otherwise not globally routable (checked here on literal
addresses and `localhost`, and again at delivery on every address the name resolves to, since
a name can resolve differently later), unless NIGHTSHIFT_NOTIFY_ALLOW_PRIVATE is set; its
apprise URLs are limited to JOB_APPRISE_SCHEMES, with no query string (apprise reads hosts
from it, `?smtp=`), and a host there that looks like one is held to the same rule. Targets in
the settings are the operator's own: any apprise scheme, any host.

A URL carries credentials (a password, a Slack token in its path): `redact` is the only form
in which one is logged or stored beside an outcome, and `target_key` tells two apart.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from urllib.parse import urlsplit

MAX_TARGETS = 5  # per job or batch file
MAX_URL_CHARS = 2048
WEBHOOK_SCHEMES = ("http", "https")
# Apprise services whose endpoint apprise itself fixes (or whose host is checked, below).
JOB_APPRISE_SCHEMES = frozenset(
    {"ntfy", "ntfys", "pover", "slack", "discord", "tgram", "pbul", "mailto", "mailtos", "macosx"}
)
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]{0,31}")
# A host worth checking: holds a dot or a colon (a name or an address), or is localhost.
# Apprise puts tokens where hosts go (`slack://TokenA/...`, `discord://12345/...`): not hosts.
_HOSTLIKE_RE = re.compile(r".*[.:].*|localhost", re.IGNORECASE)


class TargetError(ValueError):
    """A target refused; the message never holds the URL itself (it may carry secrets)."""


def is_webhook(url: str) -> bool:
    return scheme_of(url) in WEBHOOK_SCHEMES


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower()


def check_target(url: object, untrusted: bool = True, allow_private: bool = False) -> str:
    """The URL, stripped, if it may be a target; raise TargetError saying why not.

    untrusted: it comes from a job or a batch file (the stricter rules above).
    """
    if not isinstance(url, str):
        raise TargetError("must be a URL string")
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS:
        raise TargetError(f"must be a URL of 1 to {MAX_URL_CHARS} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise TargetError("must not hold spaces or control characters")
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME_RE.fullmatch(scheme.lower()):
        raise TargetError("must look like scheme://...")
    scheme = scheme.lower()
    if scheme in WEBHOOK_SCHEMES:
        host = _host(url)
        if not host:
            raise TargetError("a webhook URL needs a host")
    elif untrusted:
        if scheme not in JOB_APPRISE_SCHEMES:
            known = ", ".join(sorted({*WEBHOOK_SCHEMES, *JOB_APPRISE_SCHEMES}))
            raise TargetError(f"scheme {scheme!r} is not allowed in a job; use one of {known}")
        if "?" in rest:
            raise TargetError("an apprise URL in a job may not have a query string")
        host = _host(url)
        if not _HOSTLIKE_RE.fullmatch(host):
            return url
    else:
        return url
    if untrusted and not allow_private:
        refuse_private_literal(host)
    return url


def check_targets(urls: object, untrusted: bool = True, allow_private: bool = False) -> list[str]:
    """A list of targets (each checked), at most MAX_TARGETS, none twice."""
    if not isinstance(urls, list):
        raise TargetError("must be a list of URLs")
    if untrusted and len(urls) > MAX_TARGETS:
        raise TargetError(f"at most {MAX_TARGETS} targets")
    checked = [check_target(u, untrusted, allow_private) for u in urls]
    if len(set(checked)) != len(checked):
        raise TargetError("names a target more than once")
    return checked


def split_targets(text: str) -> list[str]:
    """A settings value: URLs separated by commas or spaces (as apprise reads them)."""
    return [part for part in re.split(r"[,\s]+", text) if part]


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a malformed IPv6 literal, a bad port
        raise TargetError("has a malformed host") from None
    return host.rstrip(".").lower()


def host_of(url: str) -> str:
    """The host a target connects to ("" when it names none), lower case."""
    try:
        return _host(url)
    except TargetError:
        return ""


def needs_address_check(url: str) -> bool:
    """Whether delivery must resolve this target's host and refuse private addresses."""
    host = host_of(url)
    return bool(host) and (is_webhook(url) or bool(_HOSTLIKE_RE.fullmatch(host)))


def address_refused(address: str) -> bool:
    """True for loopback, private, link-local, multicast, reserved and unspecified addresses
    (IPv4, IPv6, and IPv4 mapped into IPv6): anything but a globally routable one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def refuse_private_literal(host: str) -> None:
    """At submit: refuse `localhost` and a literal address that is not public."""
    if host == "localhost" or host.endswith(".localhost"):
        raise TargetError("points at this machine (loopback); set NIGHTSHIFT_NOTIFY_ALLOW_PRIVATE")
    try:
        refused = address_refused(host.strip("[]"))
    except ValueError:
        return  # a name: resolved and checked at delivery
    if refused:
        raise TargetError(
            "points at a loopback, private or link-local address; "
            "set NIGHTSHIFT_NOTIFY_ALLOW_PRIVATE to allow it"
        )


def refuse_private_resolved(url: str) -> None:
    """At delivery: resolve the target's host; refuse it if any address is not public."""
    host = host_of(url)
    refuse_private_literal(host)
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise TargetError(f"cannot resolve its host: {exc.strerror or exc}") from None
    for info in infos:
        if address_refused(str(info[4][0])):
            raise TargetError(
                "resolves to a loopback, private or link-local address; "
                "set NIGHTSHIFT_NOTIFY_ALLOW_PRIVATE to allow it"
            )


def target_key(url: str) -> str:
    """A short stable id of a target: tells two apart without showing either."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


def redact(url: str) -> str:
    """What a log line or an outcome shows of a target: its scheme and, for a webhook, its
    host and port; never a user, password, path, query or token. `https://hooks.example/…`"""
    scheme = scheme_of(url)
    if scheme in WEBHOOK_SCHEMES:
        try:
            parts = urlsplit(url)
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return f"{scheme}://…"
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}{port}/…"
    return f"{scheme}://…"
