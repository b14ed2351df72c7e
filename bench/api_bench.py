"""The HTTP API's cost: requests per second, and what an API submit adds over Client.submit.

A private redis-server and a real `nightshift api` process (uvicorn, one process, as the
command runs it), no worker: submitted jobs just queue. From this process:

latency:    N submits through the API, one after another on one keep-alive connection, and
            N calls of Client.submit in this process; median and p95 of each, and the
            difference (what the HTTP layer adds: parsing, auth, the record read back, JSON).
throughput: submits (POST /v1/jobs) and status reads (GET /v1/jobs/{id}) from C client
            threads at once, each on its own connection, for R requests in all.

Every request carries a bearer token (the lookup is one Redis round trip, as in production).

--baseline DIR: a second source tree (another commit: `git worktree add DIR REF`, or
`git archive REF | tar -x -C DIR`) whose `nightshift api` runs beside this tree's, on the
same Redis and token: the latency blocks then go this tree, the baseline, Client.submit (the
order reversed every other round), so what the machine's other load does hits all three
alike, and `latency.change_vs_baseline` is this tree's API median less the baseline's,
measured in one run. On a shared machine that difference holds up where two separate runs'
figures do not.

    python bench/api_bench.py [--n 500] [--requests 2000] [--clients 8] [--out FILE.json]
                              [--baseline DIR] [--block 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.settings import Settings  # noqa: E402
from config.store import redis_client, tokens  # noqa: E402
from producer.client import Client  # noqa: E402
from producer.local_redis import LocalRedis, free_port  # noqa: E402

JOB = {"prompt": "a lighthouse at dusk", "steps": 2, "width": 64, "height": 64}
WARMUP = 50


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(pct(ms, 0.95), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "n": len(ms),
    }


def api_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "producer.cli", "api", "--port", str(port)]


def start_api(
    settings: Settings, log: Path, source: Path = ROOT
) -> tuple[subprocess.Popen[bytes], str]:
    """`nightshift api` from the tree at `source` (python -m puts its folder first on the path)."""
    port = free_port()
    env = os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        api_argv(port), env=env, cwd=source, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nightshift api exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/openapi.json", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("nightshift api did not come up")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def timed(call: Callable[[], Any], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return times


def submitter(http: httpx.Client) -> Callable[[], None]:
    """One API submit, on `http`'s keep-alive connection."""

    def api_submit() -> None:
        response = http.post("/v1/jobs", json=JOB)
        assert response.status_code == 201, response.text

    return api_submit


def added_ms(api: dict[str, float], lib: dict[str, float]) -> dict[str, float]:
    return {
        "median_ms": round(api["median_ms"] - lib["median_ms"], 3),
        "p95_ms": round(api["p95_ms"] - lib["p95_ms"], 3),
    }


def throughput(
    url: str, headers: dict[str, str], request: str, total: int, clients: int, job_ids: list[str]
) -> dict[str, float]:
    """Requests per second from `clients` threads, `total` requests in all."""
    per_client = total // clients
    errors: list[str] = []
    start_line = threading.Barrier(clients + 1)

    def run(index: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            start_line.wait()
            for i in range(per_client):
                if request == "submit":
                    response = http.post("/v1/jobs", json=JOB)
                else:
                    response = http.get(
                        f"/v1/jobs/{job_ids[(index * per_client + i) % len(job_ids)]}"
                    )
                if response.status_code >= 300:
                    errors.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - begin
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    done = per_client * clients
    return {"requests": done, "seconds": round(seconds, 3), "per_s": round(done / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="submits for the latency figures")
    parser.add_argument("--requests", type=int, default=2000, help="requests per throughput run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--baseline", type=Path, help="another source tree to measure beside this one (A/B)"
    )
    parser.add_argument("--block", type=int, default=50, help="calls of each kind in a row")
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "producer" / "cli.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a Nightshift source tree")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="nightshift-api-bench-") as tmp:
        folder = Path(tmp)
        server = LocalRedis(folder / "redis")
        server.start()
        api = baseline = None
        connections = contextlib.ExitStack()
        try:
            settings = Settings(
                redis_url=server.url,
                model="tiny",
                data_dir=folder / "data",
                queues="bench-api",
            )
            token = tokens.create(redis_client(settings), "bench", "submit")
            headers = {"Authorization": f"Bearer {token}"}
            session: dict[str, Any] = {"headers": headers, "timeout": 60}
            api, url = start_api(settings, folder / "api.log")
            http = connections.enter_context(httpx.Client(base_url=url, **session))
            calls: dict[str, Callable[[], object]] = {"api": submitter(http)}
            if args.baseline is not None:
                # Its own data folder: each server keeps a history index of its own.
                other = settings.model_copy(update={"data_dir": folder / "data-baseline"})
                baseline, base_url = start_api(other, folder / "baseline.log", args.baseline)
                base_http = httpx.Client(base_url=base_url, **session)
                calls["baseline"] = submitter(connections.enter_context(base_http))
            client = Client(settings)
            calls["client"] = lambda: client.submit(**JOB)

            for call in calls.values():
                timed(call, WARMUP)
            # Interleaved in blocks, so a burst of load on the machine hits each alike.
            times: dict[str, list[float]] = {name: [] for name in calls}
            for round_ in range(max(1, args.n // args.block)):
                names = list(calls) if round_ % 2 == 0 else list(reversed(calls))
                for name in names:
                    times[name] += timed(calls[name], args.block)
            job_ids = [j["id"] for j in http.get("/v1/jobs?limit=200").json()["jobs"]]
            connections.close()
            stop(baseline)  # the throughput runs are this tree's alone

            api_s, lib_s = summary_ms(times["api"]), summary_ms(times["client"])
            latency: dict[str, Any] = {
                "api_submit": api_s,
                "client_submit": lib_s,
                "added_by_api": added_ms(api_s, lib_s),
            }
            if "baseline" in times:
                base_s = summary_ms(times["baseline"])
                latency["baseline"] = {
                    "source": str(args.baseline.resolve()),
                    "api_submit": base_s,
                    "added_by_api": added_ms(base_s, lib_s),
                }
                latency["change_vs_baseline"] = {
                    "median_ms": round(api_s["median_ms"] - base_s["median_ms"], 3),
                    "p95_ms": round(api_s["p95_ms"] - base_s["p95_ms"], 3),
                }
            submit_rps = throughput(url, headers, "submit", args.requests, args.clients, job_ids)
            status_rps = throughput(url, headers, "status", args.requests, args.clients, job_ids)
            sequential = {
                "submit_per_s": round(1000 / api_s["median_ms"], 1),
            }
        finally:
            connections.close()
            stop(api)
            stop(baseline)
            server.stop()

    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            "fastapi": metadata.version("fastapi"),
            "uvicorn": metadata.version("uvicorn"),
            "redis_py": metadata.version("redis"),
        },
        "latency": latency,
        "sequential": sequential,
        "throughput": {
            "clients": args.clients,
            "submit": submit_rps,
            "status": status_rps,
        },
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
