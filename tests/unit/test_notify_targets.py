"""Notification targets: which URLs a job may name, which it may not, and how they show.

No services: the rules are pure functions, except the delivery check, which resolves names
(`localhost` and literal addresses resolve without a network).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from config.errors import InvalidInput, InvalidJob, InvalidSettings
from config.notify_targets import (
    MAX_TARGETS,
    TargetError,
    address_refused,
    check_target,
    check_targets,
    redact,
    refuse_private_resolved,
    target_key,
)
from config.schema import new_job, parse_job
from config.settings import Settings
from worker.notify.channels import osascript_argv
from worker.notify.deliver import refused
from worker.notify.payload import Target

JOB = {"id": "j1", "prompt": "a fox", "seed": 1, "steps": 2, "guidance": 7.0, "created_at": 1.0}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/nightshift",
        "http://example.com:8080/x?y=1",
        "https://93.184.215.14/hook",  # a public literal
        "https://[2606:4700:4700::1111]/hook",
        "ntfy://my-topic",
        "pover://user@token",
        "slack://TokenA/TokenB/TokenC/#general",
        "discord://1234567890/webhooktoken",
        "mailto://user:password@gmail.com",
        "macosx://",
    ],
)
def test_a_job_may_name_webhooks_and_apprise_services(url: str) -> None:
    assert check_target(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://app.localhost/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://172.16.0.9/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),  # cloud metadata
        ("http://100.64.0.1/", "private"),  # carrier-grade NAT
        ("http://0.0.0.0:80/", "private"),
        ("http://[::1]/hook", "private"),
        ("http://[fe80::1]/hook", "private"),
        ("http://[fd00::5]/hook", "private"),
        ("http://[::ffff:127.0.0.1]/hook", "private"),  # IPv4 mapped
        ("http://224.0.0.1/", "private"),
        ("ntfy://192.168.1.5/topic", "private"),  # an apprise host is held to the rule too
        ("ftp://example.com/x", "not allowed"),
        ("file:///etc/passwd", "not allowed"),
        ("json://example.com/x", "not allowed"),  # apprise's own webhook: any host
        ("mailtos://u:p@example.com?smtp=10.0.0.1", "query"),
        ("https:///nohost", "host"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/\n", "URL"),  # stripped: fine; so check a control char inside
        ("not a url", "spaces"),
        ("example.com/hook", "scheme://"),
    ],
)
def test_a_job_may_not_point_a_worker_at_its_own_network_or_anything_odd(
    url: str, why: str
) -> None:
    if url.endswith("\n"):
        url = "https://example.com/\x07"
        why = "control"
    with pytest.raises(TargetError, match=why):
        check_target(url)


def test_private_hosts_pass_with_the_setting_and_from_the_operator() -> None:
    assert check_target("http://127.0.0.1:9/x", allow_private=True)
    assert check_target("http://192.168.1.5/x", untrusted=False)
    # The operator may use any apprise scheme, query strings included.
    assert check_target("json://10.0.0.2/x?method=POST", untrusted=False)


def test_a_list_is_bounded_and_names_each_target_once() -> None:
    many = [f"https://h{i}.example.com/" for i in range(MAX_TARGETS + 1)]
    with pytest.raises(TargetError, match=f"at most {MAX_TARGETS}"):
        check_targets(many)
    with pytest.raises(TargetError, match="more than once"):
        check_targets(["https://a.example/", "https://a.example/"])
    with pytest.raises(TargetError, match="list"):
        check_targets("https://a.example/")


def test_addresses_refused_cover_ipv4_ipv6_and_mapped_ones() -> None:
    refused_ = ["127.0.0.1", "10.0.0.1", "::1", "fe80::1%eth0", "::ffff:10.0.0.1", "fc00::1"]
    assert all(address_refused(a) for a in refused_)
    assert not any(address_refused(a) for a in ["93.184.215.14", "2606:4700:4700::1111"])


def test_delivery_resolves_names_and_refuses_what_they_resolve_to() -> None:
    with pytest.raises(TargetError, match="loopback"):
        refuse_private_resolved("http://localhost:1/x")
    with pytest.raises(TargetError, match="private"):
        refuse_private_resolved("http://10.9.8.7/x")
    with pytest.raises(TargetError, match="resolve"):
        refuse_private_resolved("https://no-such-host.invalid/x")


def test_redaction_keeps_scheme_host_and_port_and_never_a_secret() -> None:
    url = "https://user:s3cret@hooks.example.com:8443/services/T0/B0/tok3n?key=k3y"
    shown = redact(url)
    assert shown == "https://hooks.example.com:8443/…"
    assert redact("slack://T0ken/B0t/S3cret") == "slack://…"
    assert redact("https://[2606:4700::1]/x") == "https://[2606:4700::1]/…"
    assert target_key(url) != target_key(url + "x") and len(target_key(url)) == 12
    for secret in ("s3cret", "tok3n", "k3y", "user"):
        assert secret not in shown


def test_a_job_carries_its_targets_and_errors_never_show_their_credentials(
    offline_settings: Settings,
) -> None:
    spec = parse_job(JOB | {"notify": ["https://u:pw@hooks.example.com/x"]})
    assert spec.notify == ["https://u:pw@hooks.example.com/x"]
    assert parse_job(JOB).notify == []
    with pytest.raises(InvalidJob) as bad:
        parse_job(JOB | {"notify": ["ftp://u:hunter2@example.com/"]})
    assert bad.value.field == "notify" and "hunter2" not in str(bad.value)
    # The address rule is the submitter's settings': new_job applies it.
    with pytest.raises(InvalidJob) as private:
        new_job("a fox", offline_settings, notify=["http://admin:hunter2@192.168.1.1/x"])
    assert private.value.field == "notify" and "hunter2" not in str(private.value)
    allowed = offline_settings.model_copy(update={"notify_allow_private": True})
    assert new_job("a fox", allowed, notify=["http://127.0.0.1:9/x"]).notify


def test_settings_targets_are_checked_and_a_default_webhook_needs_the_secret(
    tmp_path: Path,
) -> None:
    base = {"data_dir": tmp_path, "redis_url": "redis://127.0.0.1:1/0"}
    ok = Settings.from_env(**base, notify_job_failed="ntfy://t, json://10.0.0.2/x")
    assert ok.notify_job_failed_targets == ["ntfy://t", "json://10.0.0.2/x"]
    with pytest.raises(InvalidSettings, match="NOTIFY_SECRET"):
        Settings.from_env(**base, notify_batch_finished="https://hooks.example.com/x")
    with pytest.raises(InvalidSettings, match="scheme://"):
        Settings.from_env(**base, notify_batch_finished="hooks.example.com")
    with pytest.raises(InvalidSettings, match="CLAIM_IDLE"):
        Settings.from_env(**base, notify_claim_idle_s=5)


def test_delivery_refuses_before_trying_and_says_why_without_the_url(
    offline_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signed = offline_settings.model_copy(update={"notify_secret": "x" * 32})
    hook = "https://u:pw@hooks.example.com/t0ken"
    no_secret = refused(Target(hook, True), offline_settings)
    assert no_secret is not None and "NOTIFY_SECRET" in (no_secret.error or "")
    private = refused(Target("http://10.0.0.8/x", True), signed)
    assert private is not None and not private.ok and not private.retry
    assert "10.0.0.8" not in (private.error or "")
    # The operator's own target, and any with the setting on, may be tried.
    assert refused(Target("http://10.0.0.8/x", False), signed) is None
    allowed = signed.model_copy(update={"notify_allow_private": True})
    assert refused(Target("http://10.0.0.8/x", True), allowed) is None
    assert "t0ken" not in caplog.text and "pw@" not in caplog.text


def test_the_mac_message_passes_text_as_arguments_never_as_script() -> None:
    argv = osascript_argv('batch "x" done', 'a "quoted" prompt')
    assert argv[0] == "osascript" and argv[-2:] == ['batch "x" done', 'a "quoted" prompt']
    assert all('"' not in arg for arg in argv[1:-2])


def test_a_batch_file_names_its_targets_and_the_hosts_are_checked_at_expansion(
    offline_settings: Settings, tmp_path: Path
) -> None:
    from producer.batches import file as batchfile

    path = tmp_path / "night.yaml"
    path.write_text("notify: http://127.0.0.1:9/hook\nprompts: [a cat]\n", encoding="utf-8")
    batch = batchfile.load(path)
    assert batch.notify == ["http://127.0.0.1:9/hook"]
    with pytest.raises(InvalidInput, match="notify"):
        batchfile.expand_batch(batch, offline_settings, "b1")
    allowed = offline_settings.model_copy(update={"notify_allow_private": True})
    assert len(batchfile.expand_batch(batch, allowed, "b1").specs) == 1
    path.write_text("notify: [gopher://u:hunter2@x.example]\nprompts: [a cat]\n")
    with pytest.raises(InvalidInput, match="notify") as bad:
        batchfile.load(path)
    assert "hunter2" not in str(bad.value)


def test_submit_takes_notify_flags() -> None:
    import argparse

    from producer.commands.submit import add_parsers, job_params

    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    args = parser.parse_args(["submit", "a fox", "--notify", "ntfy://a", "--notify", "ntfy://b"])
    assert job_params(args)["notify"] == ["ntfy://a", "ntfy://b"]


def test_a_pictures_job_chunk_and_a_replay_never_carry_the_targets() -> None:
    import io
    import json as json_

    from PIL import Image

    from producer.replay import SPEC_FIELDS
    from worker.jobs.outputs import png_info

    spec = parse_job(JOB | {"notify": ["https://u:pw@hooks.example.com/t0ken"]})
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=png_info(spec, 1, "Euler", "tiny"))
    text = Image.open(io.BytesIO(buffer.getvalue())).text
    assert json_.loads(text["nightshift"])["prompt"] == "a fox"
    assert "t0ken" not in json_.dumps(text) and "notify" not in json_.loads(text["nightshift"])
    assert "notify" not in SPEC_FIELDS
