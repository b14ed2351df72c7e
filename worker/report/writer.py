"""The morning report: when the last job of a batch ends, write its gallery, sheet and manifest.

Counting is a set, not a counter: a job that ends twice (a redelivered message finding
its record already final) is added once, so exactly one job can make the set reach
the batch's size, and exactly that one writes the report. `nightshift batch report ID`
calls write_report directly to re-create the files on demand.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

import redis
from PIL import Image, ImageDraw, ImageOps

from config.records import JobRecord
from config.settings import Settings
from config.store import batches as bs
from worker.jobs.files import is_link, private_folder, write_private
from worker.report.gallery import gallery_html

logger = logging.getLogger(__name__)

THUMB_PX = 160
CAPTION_PX = 30
SHEET_COLUMNS = 8


def report_folder(settings: Settings, batch_id: str) -> Path:
    return settings.report_path(batch_id)


def write_report(client: redis.Redis, settings: Settings, batch_id: str) -> Path:
    """Write index.html, contact-sheet.png and manifest.jsonl; return the folder.

    Every file is written like the PNGs (write_private): mode 0600, whole or absent, never
    through a link and never outside the results folder; a planted link fails the report.
    """
    batch = bs.load_batch(client, batch_id)
    records = list(bs.job_records(client, bs.job_ids(client, batch_id)))
    root, folder = settings.results_path, report_folder(settings, batch_id)
    private_folder(folder / "thumbs", root)  # refused if it, or the folder, links out
    thumbs = {r.id: _thumbnails(r, folder, root) for r in records}
    sheet = _contact_sheet(records, thumbs, folder, settings.contact_sheet_max_images)
    write_private(folder / "contact-sheet.png", partial(sheet.save, format="PNG"), root)
    manifest = "".join(_manifest_line(r) for r in records)
    write_private(folder / "manifest.jsonl", manifest.encode(), root)
    # Last, so that a page on disk means the whole report is there.
    write_private(folder / "index.html", gallery_html(batch, records, thumbs).encode(), root)
    logger.info("report of batch %s written to %s", batch_id, folder)
    return folder


def _manifest_line(record: JobRecord) -> str:
    return record.to_json_line() + "\n"


def _thumbnails(record: JobRecord, folder: Path, root: Path) -> list[str]:
    """Small JPEG copies next to the page, as paths relative to it (works from file://)."""
    rels = []
    for i, output in enumerate(record.outputs):
        target = folder / "thumbs" / f"{record.id}-{i:02d}.jpg"
        try:
            _thumbnail(Path(output), target, root)
        except OSError as exc:
            logger.warning("no thumbnail for %s: %s", output, exc)
            continue
        rels.append(os.path.relpath(target, folder))
    return rels


def _thumbnail(output: Path, target: Path, root: Path) -> None:
    """Made once and kept; a link at its place (dangling or not) is refused, never followed."""
    if not is_link(target) and target.is_file():
        return
    with Image.open(output) as image:
        image.thumbnail((THUMB_PX, THUMB_PX))
        small = image.convert("RGB")
    write_private(target, partial(small.save, format="JPEG", quality=85), root)


def _contact_sheet(
    records: list[JobRecord], thumbs: dict[str, list[str]], folder: Path, limit: int
) -> Image.Image:
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
    return sheet
