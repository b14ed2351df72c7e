"""The morning report: when the last job of a batch ends, write its gallery, sheet and manifest.

Counting is a set, not a counter: a job that ends twice (a redelivered message finding
its record already final) is added once, so exactly one job can make the set reach
the batch's size, and exactly that one writes the report. `nightshift batch report ID`
calls write_report directly to re-create the files on demand.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import redis
from celery.signals import task_postrun
from PIL import Image, ImageDraw, ImageOps

from config.records import JobRecord
from config.settings import Settings
from config.store import batches as bs
from worker.report.gallery import gallery_html

logger = logging.getLogger(__name__)

THUMB_PX = 160
CAPTION_PX = 30
SHEET_COLUMNS = 8

# SADD is idempotent per job; the report fires only on the add that makes the set full.
_ENDED_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[2], 'total') or '-1')
if redis.call('SCARD', KEYS[1]) == total then
  redis.call('HINCRBY', KEYS[2], 'reports', 1)
  return 1
end
return 0
"""


def note_job_ended(client: redis.Redis, batch_id: str, job_id: str, ttl_s: int) -> bool:
    """Count one ended job of a batch; True for exactly the call that ends the batch."""
    keys = [bs.ended_key(batch_id), bs.batch_key(batch_id)]
    return bool(client.eval(_ENDED_LUA, len(keys), *keys, job_id, ttl_s))


@task_postrun.connect
def _after_task(args: Any = None, **_: Any) -> None:
    """Runs in the worker child after every render task, whatever its outcome."""
    from worker import runtime

    payloads = (args or [None])[0]
    for payload in payloads if isinstance(payloads, list) else [payloads]:
        if isinstance(payload, dict) and payload.get("batch_id") and payload.get("id"):
            _job_ended(runtime.current().store.redis, runtime.current().settings, payload)


def _job_ended(client: redis.Redis, settings: Settings, payload: dict[str, Any]) -> None:
    job_id, batch_id = str(payload["id"]), str(payload["batch_id"])
    try:
        record = next(bs.job_records(client, [job_id]), None)
        if record is None or not record.status.finished:
            return  # requeued (worker lost, time limit handled elsewhere): counts later
        if note_job_ended(client, batch_id, job_id, settings.record_ttl_s):
            logger.info("batch %s ended with job %s: writing its report", batch_id, job_id)
            write_report(client, settings, batch_id)
    except Exception:
        # A report failure must never fail or requeue the job that triggered it.
        logger.exception("could not write the report of batch %s", batch_id)


def report_folder(settings: Settings, batch_id: str) -> Path:
    return settings.results_path / "batches" / batch_id


def write_report(client: redis.Redis, settings: Settings, batch_id: str) -> Path:
    """Write index.html, contact-sheet.png and manifest.jsonl; return the folder."""
    batch = bs.load_batch(client, batch_id)
    records = list(bs.job_records(client, bs.job_ids(client, batch_id)))
    folder = report_folder(settings, batch_id)
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    thumbs = {r.id: _thumbnails(r, folder) for r in records}
    _contact_sheet(records, thumbs, folder, settings.contact_sheet_max_images)
    _write_atomic(folder / "manifest.jsonl", "".join(_manifest_line(r) for r in records))
    # Last, so that a page on disk means the whole report is there.
    _write_atomic(folder / "index.html", gallery_html(batch, records, thumbs))
    logger.info("report of batch %s written to %s", batch_id, folder)
    return folder


def _manifest_line(record: JobRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False) + "\n"


def _thumbnails(record: JobRecord, folder: Path) -> list[str]:
    """Small JPEG copies next to the page, as paths relative to it (works from file://)."""
    rels = []
    for i, output in enumerate(record.outputs):
        target = folder / "thumbs" / f"{record.id}-{i:02d}.jpg"
        try:
            if not target.exists():
                with Image.open(output) as image:
                    image.thumbnail((THUMB_PX, THUMB_PX))
                    image.convert("RGB").save(target, "JPEG", quality=85)
        except OSError as exc:
            logger.warning("no thumbnail for %s: %s", output, exc)
            continue
        rels.append(os.path.relpath(target, folder))
    return rels


def _contact_sheet(
    records: list[JobRecord], thumbs: dict[str, list[str]], folder: Path, limit: int
) -> None:
    cells = [(r, rel) for r in records for rel in thumbs[r.id] or [""]][:limit]
    columns = max(1, min(SHEET_COLUMNS, len(cells)))
    rows = max(1, -(-len(cells) // columns))
    cell_h = THUMB_PX + CAPTION_PX
    sheet = Image.new("RGB", (columns * THUMB_PX, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (record, rel) in enumerate(cells):
        x, y = (n % columns) * THUMB_PX, (n // columns) * cell_h
        if rel:
            with Image.open(folder / rel) as thumb:
                sheet.paste(ImageOps.pad(thumb, (THUMB_PX, THUMB_PX), color="white"), (x, y))
        else:
            draw.rectangle((x + 4, y + 4, x + THUMB_PX - 4, y + THUMB_PX - 4), fill="#ddd")
            draw.text((x + 10, y + THUMB_PX // 2), record.status.value.upper(), fill="#a00")
        draw.text((x + 4, y + THUMB_PX + 2), f"seed {record.spec.seed}", fill="black")
        draw.text((x + 4, y + THUMB_PX + 15), record.spec.prompt[:26], fill="#444")
    tmp = folder / ".contact-sheet.png.tmp"
    sheet.save(tmp, "PNG")
    os.replace(tmp, folder / "contact-sheet.png")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
