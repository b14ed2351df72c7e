"""Nobody let in: the model comes from the worker's config only, files stay in RESULTS_DIR,
passwords never reach logs or records. Real redis-server and worker processes throughout;
TLS URLs and their redaction, which need no server, are tests/unit/test_security_urls.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import redis_server_with

from config import keys as names
from config.errors import BrokerUnavailable, InvalidSettings
from config.records import JobStatus
from config.settings import Settings
from config.tasks import RENDER_TASK
from producer.client import Client
from producer.local_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-Pa55"


def payload(settings: Settings, job_id: str, **extra: object) -> dict[str, object]:
    spec = {
        "id": job_id,
        "prompt": "raw",
        "seed": 1,
        "steps": 2,
        "guidance": 7.5,
        "width": 64,
        "height": 64,
        "queue": settings.default_queue,
        "created_at": time.time(),
    }
    return spec | extra


def test_a_worker_refuses_to_start_with_a_model_outside_its_allow_list(
    settings: Settings,
) -> None:
    env = os.environ | settings.to_env() | {"NIGHTSHIFT_ALLOWED_MODELS": "someone/else"}
    out = subprocess.run(
        [sys.executable, "-m", "producer.cli", "worker"],
        cwd=ROOT,
        env=env | {"PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "is not in NIGHTSHIFT_ALLOWED_MODELS" in out.stderr
    with pytest.raises(InvalidSettings):
        Settings.from_env(model="evil/repo", allowed_models="stable-diffusion-v1-5/x")
    assert Settings(model="a/b", allowed_models="a/b, c/d").allowed_model_list == ["a/b", "c/d"]


def test_a_message_asking_for_another_model_or_remote_code_is_refused(
    client: Client, worker, settings: Settings
) -> None:
    """Sent past the producer's validation, straight to the queue: the worker refuses it."""
    evil = payload(
        settings,
        "evil-model",
        model="attacker/repo",
        custom_pipeline="attacker/pipe",
        trust_remote_code=True,
    )
    client.app.send_task(
        RENDER_TASK, args=[evil], task_id="evil-model", queue=settings.default_queue
    )
    after = client.submit("after", steps=2, width=64, height=64).wait(180)

    assert after.status is JobStatus.SUCCEEDED
    assert after.render.model == settings.model
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    assert not r.exists(names.job_key("evil-model"))
    stats = r.hgetall(names.worker_key(after.render.worker, after.render.pid))
    assert stats["loads"] == "1"  # nothing else was ever loaded
    assert "unknown field" in worker.tail(100_000)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_nothing_is_written_outside_results_dir(
    client: Client, worker, settings: Settings, tmp_path: Path
) -> None:
    before = files_under(tmp_path)
    bad_ids = ["../../escape", "/tmp/escape", "..", "a/../../escape"]
    for job_id in bad_ids:  # past the producer: the worker validates again
        client.app.send_task(
            RENDER_TASK,
            args=[payload(settings, "ok-id", id=job_id)],
            task_id=f"t{bad_ids.index(job_id)}",
            queue=settings.default_queue,
        )
    client.app.send_task(
        RENDER_TASK,
        args=[payload(settings, "batch-escape", batch_id="../../escape")],
        task_id="batch-escape",
        queue=settings.default_queue,
    )
    good = [
        client.submit("in a batch", steps=2, width=64, height=64, job_id="b1"),
        client.submit("plain", steps=2, width=64, height=64, job_id="p1"),
    ]
    records = [job.wait(180) for job in good]

    assert all(r.status is JobStatus.SUCCEEDED for r in records)
    new = files_under(tmp_path) - before
    results = settings.results_path
    outside = [p for p in new if results not in p.parents and not p.name.startswith("worker-")]
    assert outside == []
    assert sorted(p.name for p in new if results in p.parents) == ["b1-00.png", "p1-00.png"]
    assert not Path("/tmp/escape-00.png").exists()


def aof_in(folder: Path) -> list[str]:
    return ["--dir", str(folder), "--save", "", "--appendonly", "yes"]


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    with redis_server_with(url, "--port", str(port), "--requirepass", PASSWORD, *aof_in(tmp_path)):
        yield url


def render_without_leaking_the_password(url: str, settings: Settings, start_worker) -> None:
    """A real worker and client on this Redis: a job succeeds, the password shows nowhere."""
    secured = settings.model_copy(update={"redis_url": url})
    worker = start_worker(settings_=secured)
    record = Client(secured).submit("behind a password", steps=2, width=64, height=64).wait(180)

    assert record.status is JobStatus.SUCCEEDED, record.error
    assert PASSWORD not in record.to_json()
    assert PASSWORD not in worker.tail(1_000_000)


def test_a_password_protected_redis_works_and_the_password_never_shows(
    password_redis: str, settings: Settings, start_worker
) -> None:
    render_without_leaking_the_password(password_redis, settings, start_worker)
    wrong = settings.model_copy(update={"redis_url": password_redis.replace(PASSWORD, "no")})
    with pytest.raises(BrokerUnavailable, match="Redis is not reachable") as caught:
        Client(wrong).submit("x", steps=2, width=64, height=64)
    assert "no@" not in str(caught.value)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=nightshift-test-ca"),
    )
    openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key"),
        *("-out", "server.csr", "-subj", "/CN=127.0.0.1"),
    )
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf"),
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A real redis-server that speaks only TLS (no plain port) and wants a password."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = make_certificates(certs)
    port = free_port()
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={ca}"
    with redis_server_with(
        url,
        *("--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"),
        *("--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca)),
        *("--requirepass", PASSWORD, *aof_in(tmp_path)),
        log=tmp_path / "redis-tls.log",
    ):
        yield url


def test_a_worker_renders_through_a_tls_redis_and_certificates_are_checked(
    tls_redis: str, settings: Settings, start_worker
) -> None:
    render_without_leaking_the_password(tls_redis, settings, start_worker)
    # Without our CA the server's certificate cannot be verified: refused, not trusted.
    untrusted = tls_redis.split("&ssl_ca_certs=")[0]
    with pytest.raises(BrokerUnavailable, match="Redis is not reachable"):
        Client(settings.model_copy(update={"redis_url": untrusted})).submit("x", steps=2)
    # A plain connection to the TLS port is refused as well.
    plain = tls_redis.replace("rediss://", "redis://").split("?")[0]
    with pytest.raises(BrokerUnavailable):
        Client(settings.model_copy(update={"redis_url": plain})).submit("x", steps=2)
