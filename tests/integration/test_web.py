"""The web app (issue 16) in a real headless Chromium, driven by Playwright, against a real
`nightshift api`, a real worker (the tiny model on the CPU) and Redis.

One server, one worker and one browser serve the module; each test signs in a fresh browser
context with a token of its own scope, as a person would, through the sign-in form. The
worker has one tiny LoRA (LORA) for the submit form's LoRA picker. Every page is saved as a
screenshot at desktop and phone widths under test-artifacts/web/.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from api_servers import ApiProcess, api_running, made_tokens, module_settings, worker_running
from conftest import WorkerProcess
from helpers import ROOT
from PIL import Image

from config import keys as names
from config.fields import INPUT_ID_RE
from config.schema import JobSpec
from config.settings import Settings
from config.store import sessions
from config.store import tokens as tokens_store
from producer.local_redis import LocalRedis
from worker.render.tiny import write_tiny_lora

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian chromium package")

ARTIFACTS = ROOT / "test-artifacts" / "web"
SIZES = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
SMALL = {"width": 64, "height": 64}
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script> xss-marker"
SLOW_STEPS = 500  # seen running and cancelled: the tiny model's steps are quick
WAIT_MS = 30_000
LORA = "grain"  # a random LoRA for the tiny model, in the worker's LoRA folder


@pytest.fixture(scope="module")
def web_settings(
    redis_server: LocalRedis, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    folder = tmp_path_factory.mktemp("web")
    write_tiny_lora(folder / "loras", LORA, seed=1)  # there before the worker lists its LoRAs
    changes = {
        "default_steps": 2,
        "preview_interval_s": 0.05,
        "lora_dirs": str(folder / "loras"),
    }
    return module_settings(redis_server, tiny_model, folder, "web", **changes)


@pytest.fixture(scope="module")
def tokens(web_settings: Settings) -> dict[str, str]:
    return made_tokens(web_settings, "web")


@pytest.fixture(scope="module")
def server(
    web_settings: Settings, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    with api_running(web_settings, tmp_path_factory.mktemp("web-log") / "api.log") as process:
        yield process


@pytest.fixture(scope="module")
def worker(
    web_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with worker_running(web_settings, tmp_path_factory.mktemp("w") / "worker.log") as process:
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def sign_in(browser: Any, server: ApiProcess, tokens: dict[str, str]) -> Iterator[Callable]:
    """sign_in(scope) -> a page signed in with that scope's token; dialogs are recorded on
    page.dialogs (any one is a failure: no page may run a prompt's script)."""
    contexts = []

    def open_as(scope: str) -> Any:
        context = browser.new_context(viewport=SIZES["desktop"])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.goto(f"{server.url}/")
        assert "/login" in page.url  # not signed in: sent to the sign-in form
        page.get_by_label("API token").fill(tokens[scope])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{server.url}/")
        page.wait_for_selector("body[data-ready]")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shoot(page: Any, name: str) -> None:
    """The page as it is, at desktop and phone widths."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(100)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size(SIZES["desktop"])


def api(server: ApiProcess, token: str, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, **kw)
    assert response.status_code < 300, response.text
    return response.json()


def wait_status(server: ApiProcess, token: str, job_id: str, wanted: set[str]) -> dict:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        job = api(server, token, "GET", f"/v1/jobs/{job_id}")
        if job["status"] in wanted:
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']}, not {wanted}")


def test_submitting_from_the_form_shows_progress_the_preview_and_the_image(
    sign_in: Callable, worker: WorkerProcess
) -> None:
    page = sign_in("submit")
    shoot(page, "queue")
    page.get_by_role("link", name="Submit").click()
    page.wait_for_selector("#model option:nth-child(2)", state="attached")
    page.get_by_label("Prompt", exact=True).fill(XSS)
    page.get_by_label("Width").fill("64")
    page.get_by_label("Height").fill("64")
    page.get_by_label("Steps", exact=True).fill("8")
    page.get_by_label("Seed", exact=True).fill("7")
    # Sample what the page shows while it renders: progress values and loaded previews.
    page.evaluate("""() => { window.seen = {progress: [], previews: []};
      setInterval(() => {
        const bar = document.querySelector('#live progress');
        if (bar) window.seen.progress.push(Number(bar.value));
        const img = document.querySelector('#live img.preview');
        if (img && img.complete && img.naturalWidth > 0 && !img.hidden)
          window.seen.previews.push(img.currentSrc);
      }, 15); }""")
    shoot(page, "submit")
    page.get_by_role("button", name="Submit", exact=True).click()
    image = page.locator("#live img.result").first
    image.wait_for()
    page.wait_for_function("() => document.querySelector('#live img.result').naturalWidth > 0")
    seen = page.evaluate("window.seen")
    progress = sorted(set(seen["progress"]))
    assert any(0 < value < 100 for value in progress), progress  # seen part-way through
    assert len(set(seen["previews"])) >= 2, seen["previews"]  # the preview changed
    assert page.locator("#live .status").inner_text() == "succeeded"
    assert image.get_attribute("alt") == XSS  # alt text from the prompt, as text
    shoot(page, "submit-done")
    assert page.dialogs == []


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_text(server: ApiProcess, token: str, job_id: str) -> tuple[tuple[int, int], str]:
    """A job's first image, fetched through the API: its size and its A1111 parameters."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{server.url}/v1/jobs/{job_id}/images/0.png"
    response = httpx.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as image:
        return image.size, str(image.info["parameters"])


def submitted(page: Any) -> str:
    """Click the form's Submit; the id of the job its POST /v1/jobs made."""
    with page.expect_response(
        lambda r: r.url.endswith("/v1/jobs") and r.request.method == "POST"
    ) as answer:
        page.get_by_role("button", name="Submit", exact=True).click()
    assert answer.value.status == 201, answer.value.text()
    return str(answer.value.json()["id"])


def rendered_live(page: Any, job_id: str) -> Any:
    """Wait until the submit page's live area shows that job's image, loaded; the image."""
    page.wait_for_selector(f'#live a[href="/jobs/{job_id}"]')
    image = page.locator("#live img.result").first
    image.wait_for()
    page.wait_for_function("() => document.querySelector('#live img.result').naturalWidth > 0")
    assert page.locator("#live .status").inner_text() == "succeeded"
    return image


def meta_rows(page: Any, server: ApiProcess, job_id: str) -> dict[str, str]:
    """The image page's metadata table, label -> value, once its image has loaded."""
    page.goto(f"{server.url}/jobs/{job_id}")
    page.wait_for_selector("#images img.result")
    page.wait_for_function("() => document.querySelector('#images img.result').naturalWidth > 0")
    rows = page.locator("#meta tr")
    return {
        rows.nth(i).locator("th").inner_text(): rows.nth(i).locator("td").inner_text()
        for i in range(rows.count())
    }


def test_the_form_applies_a_lora_with_its_weight_and_a_hires_pass(
    sign_in: Callable, server: ApiProcess, tokens: dict[str, str], worker: WorkerProcess
) -> None:
    assert LORA in api(server, tokens["read"], "GET", "/v1/loras")["loras"]
    page = sign_in("submit")
    page.get_by_role("link", name="Submit").click()
    page.wait_for_selector("#model option:nth-child(2)", state="attached")
    assert page.locator("#loras-help").inner_text() == "1 LoRA(s) on the workers"
    page.get_by_label("Prompt", exact=True).fill("a lighthouse in the grain")
    page.get_by_label("Width").fill("64")
    page.get_by_label("Height").fill("64")
    page.get_by_label("Steps", exact=True).fill("4")
    page.get_by_label("Seed", exact=True).fill("11")
    page.get_by_role("button", name="Add a LoRA").click()
    picker = page.get_by_label("LoRA 1", exact=True)
    assert picker.evaluate("node => node.tagName") == "SELECT"  # the workers' names to pick
    picker.select_option(LORA)
    page.get_by_label("Weight").fill("0.8")
    page.get_by_label("Upscale and refine").check()
    page.get_by_label("Scale", exact=True).fill("1.5")
    page.get_by_label("Refine steps").fill("2")
    page.get_by_label("Refine strength").fill("0.5")
    shoot(page, "submit-lora-hires")
    job_id = submitted(page)
    image = rendered_live(page, job_id)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 96]
    job = api(server, tokens["read"], "GET", f"/v1/jobs/{job_id}")
    assert job["status"] == "succeeded", job["error"]
    assert job["spec"]["loras"] == [{"name": LORA, "weight": 0.8}]
    hires = {"scale": 1.5, "steps": 2, "strength": 0.5, "upscaler": "lanczos"}
    assert job["spec"]["hires"] == hires
    assert (job["spec"]["width"], job["spec"]["height"], job["spec"]["steps"]) == (64, 64, 4)
    assert (job["width"], job["height"]) == (96, 96)  # the images: after the hires pass
    size, text = png_text(server, tokens["read"], job_id)
    assert size == (96, 96)
    assert f"<lora:{LORA}:0.8>" in text and f'Lora hashes: "{LORA}: ' in text
    assert "Hires upscale: 1.5" in text and "Hires steps: 2" in text
    meta = meta_rows(page, server, job_id)
    assert meta["LoRAs"] == f"{LORA} 0.8"
    assert meta["Hires fix"] == "64 × 64 upscaled ×1.5 (lanczos), 2 steps at strength 0.5"
    assert meta["Size"] == "96 × 96" and meta["Mode"] == "txt2img"
    shoot(page, "job-lora-hires")
    assert page.dialogs == []


def test_the_form_uploads_an_init_image_and_a_mask_for_inpainting_then_img2img(
    sign_in: Callable,
    server: ApiProcess,
    tokens: dict[str, str],
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    init.write_bytes(png(Image.new("RGB", (64, 64), (30, 120, 200))))
    white_right = Image.new("L", (64, 64), 0)
    white_right.paste(255, (32, 0, 64, 64))  # repaint the right half only
    mask.write_bytes(png(white_right))
    page = sign_in("submit")
    page.goto(f"{server.url}/submit")
    page.wait_for_selector("#model option:nth-child(2)", state="attached")
    page.get_by_label("Prompt", exact=True).fill("a boat on the lake")
    page.get_by_label("Steps", exact=True).fill("4")
    page.get_by_label("Seed", exact=True).fill("5")
    page.get_by_label("Init image").set_input_files(init)
    page.get_by_label("Mask (white repaints)").set_input_files(mask)
    page.get_by_label("Strength", exact=True).fill("0.75")
    shoot(page, "submit-init-mask")
    inpaint_id = submitted(page)
    rendered_live(page, inpaint_id)
    # The same form without its mask: img2img from the same init image.
    page.get_by_label("Mask (white repaints)").set_input_files([])
    page.get_by_label("Strength", exact=True).fill("0.5")
    img2img_id = submitted(page)
    rendered_live(page, img2img_id)
    jobs = {
        job_id: api(server, tokens["read"], "GET", f"/v1/jobs/{job_id}")
        for job_id in (inpaint_id, img2img_id)
    }
    inpainted, redone = jobs[inpaint_id], jobs[img2img_id]
    for job in jobs.values():
        assert job["status"] == "succeeded", job["error"]
        assert INPUT_ID_RE.fullmatch(job["spec"]["init_image"])
        assert (job["width"], job["height"]) == (64, 64)  # the init image's size
    assert JobSpec.model_validate(inpainted["spec"]).mode == "inpaint"
    assert INPUT_ID_RE.fullmatch(inpainted["spec"]["mask"])
    assert inpainted["spec"]["strength"] == 0.75
    assert JobSpec.model_validate(redone["spec"]).mode == "img2img"
    assert redone["spec"]["mask"] is None and redone["spec"]["strength"] == 0.5
    assert redone["spec"]["init_image"] == inpainted["spec"]["init_image"]  # one stored input
    _, text = png_text(server, tokens["read"], inpaint_id)
    assert "Denoising strength: 0.75" in text
    meta = meta_rows(page, server, inpaint_id)
    assert meta["Mode"] == "inpaint (init image and mask)"
    assert meta["Init image"] == f"{inpainted['spec']['init_image']} (strength 0.75)"
    assert meta["Mask"] == inpainted["spec"]["mask"]
    shoot(page, "job-inpaint")
    meta = meta_rows(page, server, img2img_id)
    assert meta["Mode"] == "img2img (init image)" and meta["Mask"] == "—"
    assert meta["Init image"] == f"{redone['spec']['init_image']} (strength 0.5)"
    assert page.dialogs == []


def test_a_running_job_is_cancelled_from_the_queue_page(
    sign_in: Callable, server: ApiProcess, tokens: dict[str, str], worker: WorkerProcess
) -> None:
    job = api(
        server,
        tokens["submit"],
        "POST",
        "/v1/jobs",
        json={"prompt": "a slow fox", "steps": SLOW_STEPS, **SMALL},
    )
    page = sign_in("submit")
    running = page.locator(f'#running li[data-job="{job["id"]}"]')
    running.locator("progress").wait_for()
    shoot(page, "queue-running")
    running.get_by_role("button", name="Cancel job").click()
    assert wait_status(server, tokens["read"], job["id"], {"cancelled"})["status"] == "cancelled"
    page.wait_for_selector(f'#recent li[data-job="{job["id"]}"][data-status="cancelled"]')


def test_an_admin_pauses_and_resumes_the_workers(
    sign_in: Callable, server: ApiProcess, tokens: dict[str, str]
) -> None:
    page = sign_in("admin")
    try:
        page.get_by_role("button", name="Pause workers").click()
        page.wait_for_selector('#queue-state[data-paused="true"]')
        assert api(server, tokens["read"], "GET", "/v1/queue")["paused"] is True
        shoot(page, "queue-paused")
        page.get_by_role("button", name="Resume workers").click()
        page.wait_for_selector('#queue-state[data-paused="false"]')
        assert api(server, tokens["read"], "GET", "/v1/queue")["paused"] is False
    finally:
        api(server, tokens["admin"], "POST", "/v1/queue/resume")


def test_a_batch_file_is_checked_by_a_dry_run_then_confirmed(
    sign_in: Callable, server: ApiProcess, tokens: dict[str, str], worker: WorkerProcess
) -> None:
    batch = (
        "name: web-batch\ndefaults: {steps: 2, width: 64, height: 64}\n"
        "prompts:\n  - a red kite over the sea\n  - a blue kite over the sea\n"
    )
    page = sign_in("submit")
    page.goto(page.url + "submit")
    page.get_by_label("Batch file").set_input_files(
        files=[{"name": "kites.yaml", "mimeType": "application/yaml", "buffer": batch.encode()}]
    )
    page.get_by_role("button", name="Check it (dry run)").click()
    page.wait_for_selector("#dry:not([hidden])")
    assert page.locator("#dry-summary").inner_text().startswith("2 job(s)")
    assert "kite over the sea" in page.locator("#dry-sample").inner_text()
    assert api(server, tokens["read"], "GET", "/v1/batches")["batches"] == []  # nothing yet
    shoot(page, "submit-dry-run")
    page.get_by_role("button", name="Submit this batch").click()
    page.wait_for_selector("#batch-done a")
    batches = api(server, tokens["read"], "GET", "/v1/batches")["batches"]
    assert [b["total"] for b in batches] == [2]
    page.get_by_role("link", name="See it on the batches page").click()
    page.wait_for_selector(f'li[data-batch="{batches[0]["id"]}"]')
    shoot(page, "batches")
    deadline = time.monotonic() + 90  # its two jobs render, then the worker writes the report
    while not page.get_by_role("link", name="Morning report").count():
        assert time.monotonic() < deadline, "no morning report link"
        time.sleep(0.5)
        page.reload()
        page.wait_for_selector(f'li[data-batch="{batches[0]["id"]}"]')
    page.get_by_role("link", name="Morning report").click()
    # The batch counts its report as it starts writing it: the page may be a moment behind.
    while "web-batch" not in page.title():  # the report's own page, through the session
        assert time.monotonic() < deadline, "the morning report did not open"
        time.sleep(0.2)
        page.reload()


def test_history_search_opens_an_image_page_that_replays_it(
    sign_in: Callable, server: ApiProcess, tokens: dict[str, str], worker: WorkerProcess
) -> None:
    made = api(
        server,
        tokens["submit"],
        "POST",
        "/v1/jobs",
        json={"prompt": "a zebracorn in the orchard", "steps": 2, **SMALL},
    )
    wait_status(server, tokens["read"], made["id"], {"succeeded"})
    page = sign_in("read")
    page.get_by_role("link", name="History").click()
    page.wait_for_selector("body[data-ready]")
    shoot(page, "history")
    page.get_by_label("Search prompts").fill("zebracorn")
    page.get_by_role("button", name="Search").click()
    hit = page.locator(f'#history li[data-job="{made["id"]}"]')
    hit.wait_for()
    assert page.locator("#history li").count() == 1
    hit.get_by_role("link").click()
    page.wait_for_url(f"**/jobs/{made['id']}")
    page.wait_for_selector("#images img.result")
    assert "a zebracorn in the orchard" in page.locator("#meta").inner_text()
    download = page.get_by_role("link", name="Download image 1 (PNG)")
    assert download.get_attribute("download") == f"{made['id']}-0.png"
    shoot(page, "job")
    # A read token sees no Replay: sign in with submit to replay.
    assert not page.get_by_role("button", name="Replay").is_visible()
    page = sign_in("submit")
    page.goto(f"{server.url}/jobs/{made['id']}")
    page.get_by_role("link", name="Use as init image").click()
    page.wait_for_selector("#init-preview:not([hidden])")
    assert page.get_by_label("Prompt", exact=True).input_value() == made["prompt"]
    assert "init image" in page.locator("#init-from").inner_text().lower()
    page.goto(f"{server.url}/jobs/{made['id']}")
    page.get_by_role("button", name="Replay").click()
    page.wait_for_url(lambda url: made["id"] not in url and "/jobs/" in url)
    replay_id = page.url.rsplit("/", 1)[1]
    replayed = wait_status(server, tokens["read"], replay_id, {"succeeded"})
    assert replayed["prompt"] == made["prompt"] and replayed["seed"] == made["seed"]
    page.wait_for_selector("#images img.result")


def test_a_prompt_holding_html_is_text_on_every_page(
    sign_in: Callable, server: ApiProcess, tokens: dict[str, str], worker: WorkerProcess
) -> None:
    made = api(server, tokens["submit"], "POST", "/v1/jobs", json={"prompt": XSS, **SMALL})
    wait_status(server, tokens["read"], made["id"], {"succeeded"})
    page = sign_in("read")
    for path, where in (
        ("/", f'#recent li[data-job="{made["id"]}"] .prompt'),
        ("/history?q=xss-marker", f'#history li[data-job="{made["id"]}"] .prompt'),
        (f"/jobs/{made['id']}", "#meta td"),
    ):
        page.goto(f"{server.url}{path}")
        page.wait_for_selector(where)
        assert page.get_by_text(XSS, exact=True).first.is_visible(), path
        assert page.locator("main script, main img[src='x']").count() == 0, path
    shoot(page, "job-html-prompt")
    assert page.dialogs == []


def test_a_read_token_sees_no_actions_and_a_write_without_csrf_is_refused(
    sign_in: Callable, server: ApiProcess
) -> None:
    page = sign_in("read")
    assert not page.get_by_role("button", name="Pause workers").is_visible()
    assert page.locator(".cancel-job").count() == 0
    page.goto(f"{server.url}/submit")
    assert page.get_by_role("button", name="Submit", exact=True).is_disabled()
    page = sign_in("submit")
    post = """async (headers) => (await fetch('/v1/jobs', {method: 'POST', headers,
        body: JSON.stringify({prompt: 'posted', steps: 2, width: 64, height: 64})})).status"""
    json_type = {"Content-Type": "application/json"}
    assert page.evaluate(post, json_type) == 403  # the session cookie alone writes nothing
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert page.evaluate(post, json_type | {"X-CSRF-Token": csrf}) == 201


def test_signing_out_ends_the_session_for_the_api_too(
    sign_in: Callable, server: ApiProcess
) -> None:
    page = sign_in("read")
    status = "async () => (await fetch('/v1/queue')).status"
    assert page.evaluate(status) == 200
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.evaluate(status) == 401
    page.goto(f"{server.url}/history")
    assert "/login?next=/history" in page.url


def session_key(session_id: str) -> str:
    return names.web_session_key(hashlib.sha256(session_id.encode()).hexdigest())


def test_a_session_slides_expires_and_dies_with_its_token(web_settings: Settings) -> None:
    client = redis.Redis.from_url(web_settings.redis_url)
    token = tokens_store.create(client, "web-session-test", "submit")
    info = tokens_store.lookup(client, token)
    assert info is not None
    session_id, made = sessions.create(client, token, info, ttl_s=60)
    key = session_key(session_id)
    assert token not in str(client.get(key)) and session_id not in str(client.get(key))
    client.expire(key, 5)
    found = sessions.lookup(client, session_id, ttl_s=60)
    assert found is not None and found.csrf == made.csrf and found.scope == "submit"
    assert client.ttl(key) > 5  # each use slides it on
    assert sessions.lookup(client, "another id") is None
    client.pexpire(key, 1)
    deadline = time.monotonic() + 5
    while client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sessions.lookup(client, session_id) is None  # expired
    session_id, _ = sessions.create(client, token, info)
    tokens_store.revoke(client, "web-session-test")
    assert sessions.lookup(client, session_id) is None  # its token is gone: so is it
    assert (
        client.exists(names.web_session_key(hashlib.sha256(session_id.encode()).hexdigest())) == 0
    )
