"""The web app's history page with 10,000 jobs: how soon its first screen is there, measured in
the browser (issue 16: under a second).

A private redis-server gets N job records through the real store (JobStore.create_many), each
succeeded with a 64x64 PNG in the results folder (hard links of one file: the server reads
each as its own); the history index is built by `nightshift history rebuild`, then a real
`nightshift api` serves the page to the system's headless Chromium (Playwright), signed in
through the form. Each load is timed from navigation start (performance.now() in the page):

- rows:   the first page of jobs is in the DOM (history.js sets body[data-ready] then)
- images: every thumbnail in the first screen has loaded too

Prints the median and every load, as one JSON object.

    python bench/web_history_bench.py [--jobs 10000] [--loads 7] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.records import JobRecord, JobStatus, RenderInfo  # noqa: E402
from config.schema import JobSpec  # noqa: E402
from config.settings import Settings  # noqa: E402
from config.store import redis_client, tokens  # noqa: E402
from config.store.jobs import JobStore  # noqa: E402
from producer.local_redis import LocalRedis, free_port  # noqa: E402

SUBJECTS = ["fox", "lighthouse", "astronaut", "castle", "owl", "harbor", "glacier", "robot"]
STYLES = ["oil painting", "watercolour", "35mm photo", "ink sketch", "isometric render"]
FIRST_SCREEN_IMAGES = """() => {
  const shown = [...document.querySelectorAll('#history img')]
    .filter((img) => img.getBoundingClientRect().top < innerHeight);
  return shown.length > 0 && shown.every((img) => img.complete && img.naturalWidth > 0)
    ? performance.now() : 0;
}"""


def records(n: int, results: Path) -> list[JobRecord]:
    from PIL import Image

    png = results / "source.png"
    Image.new("RGB", (64, 64), (40, 90, 160)).save(png)
    start = time.time() - 30 * 86_400
    made = []
    for i in range(n):
        created = start + i * 30 * 86_400 / n
        path = results / f"job-{i:06}-0.png"
        os.link(png, path)
        spec = JobSpec(
            id=f"job-{i:06}",
            prompt=f"a {SUBJECTS[i % 8]} at dusk, {STYLES[i % 5]}, number {i}",
            seed=i,
            steps=20,
            guidance=7.0,
            width=64,
            height=64,
            created_at=created,
        )
        made.append(
            JobRecord(
                spec=spec,
                status=JobStatus.SUCCEEDED,
                created_at=created,
                started_at=created + 1,
                finished_at=created + 5,
                render_s=4.0,
                outputs=[str(path)],
                render=RenderInfo(worker="bench-host"),
            )
        )
    return made


def fill(settings: Settings, n: int) -> float:
    started = time.perf_counter()
    store = JobStore.from_settings(settings)
    made = records(n, settings.results_path)
    for at in range(0, n, 1000):
        store.create_many(made[at : at + 1000])
    return time.perf_counter() - started


def nightshift(settings: Settings, *args: str, wait: bool = True) -> Any:
    env = os.environ | settings.to_env() | {"PYTHONWARNINGS": "ignore"}
    argv = [sys.executable, "-m", "producer.cli", *args]
    if wait:
        return subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("nightshift api did not come up")


def measure(url: str, token: str, loads: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    runs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/login")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/")
        for _ in range(loads + 1):  # the first load warms the server's caches: not counted
            page.goto(f"{url}/history", wait_until="commit")
            page.wait_for_selector("body[data-ready]", timeout=30_000)
            rows = float(page.evaluate("document.body.dataset.ready"))
            images = page.wait_for_function(FIRST_SCREEN_IMAGES, timeout=30_000).json_value()
            count = page.locator("#history li").count()
            runs.append({"rows_ms": round(rows, 1), "images_ms": round(images, 1), "rows": count})
        browser.close()
    return runs[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="web-history-bench-") as folder:
        root = Path(folder)
        server = LocalRedis(root / "redis")
        server.start()
        api = None
        try:
            settings = Settings(
                redis_url=server.url,
                data_dir=root / "data",
                results_dir=root / "results",
                device="cpu",
                queues="bench",
            )
            settings.results_path.mkdir(parents=True, exist_ok=True)
            fill_s = fill(settings, args.jobs)
            token = tokens.create(redis_client(settings), "bench", "read")
            started = time.perf_counter()
            nightshift(settings, "history", "rebuild")
            rebuild_s = time.perf_counter() - started
            port = free_port()
            api = nightshift(settings, "api", "--port", str(port), wait=False)
            url = f"http://127.0.0.1:{port}"
            wait_up(url)
            runs = measure(url, token, args.loads)
        finally:
            if api is not None:
                api.terminate()
                api.wait(30)
            server.stop()
    result = {
        "jobs": args.jobs,
        "first_screen_rows_ms_median": statistics.median(r["rows_ms"] for r in runs),
        "first_screen_images_ms_median": statistics.median(r["images_ms"] for r in runs),
        "loads": runs,
        "fill_s": round(fill_s, 1),
        "index_rebuild_s": round(rebuild_s, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
