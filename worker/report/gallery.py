"""The batch gallery page: one self-contained HTML file (inline CSS and JS, no network).

Thumbnails are relative paths, so the page works opened straight from disk, copied
with its folder, or served by any static server.
"""

from __future__ import annotations

import time
from collections import Counter
from html import escape

from config.records import JobRecord, JobStatus
from config.store.batches import BatchRecord

_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.4em;margin:0 0 .2em} .sub{color:#666;margin-bottom:1em}
.filters button{margin:0 .3em .8em 0;padding:.3em .8em;border:1px solid #bbb;
 border-radius:4px;background:#fff;cursor:pointer}
.filters button.on{background:#222;color:#fff}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;font-size:12px;
 overflow-wrap:anywhere}
.card img{width:100%;height:auto;display:block;border-radius:3px;image-rendering:pixelated}
.card .p{font-weight:600;margin:.4em 0}
.card .m{color:#555} .card.failed,.card.cancelled{border-color:#d88;background:#fff6f6}
.why{color:#a00} table{border-collapse:collapse;margin-top:1em}
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;font-size:12px}
td{overflow-wrap:anywhere}
.hidden{display:none}
"""

_JS = """
document.querySelectorAll('.filters button').forEach(function (b) {
  b.addEventListener('click', function () {
    document.querySelectorAll('.filters button').forEach(function (x) {
      x.classList.toggle('on', x === b);
    });
    var want = b.dataset.status;
    history.replaceState(null, '', want === 'all' ? '#' : '#' + want);
    document.querySelectorAll('.card').forEach(function (c) {
      c.classList.toggle('hidden', want !== 'all' && c.dataset.status !== want);
    });
  });
});
// index.html#failed opens with that filter on, so a link can point straight at the failures.
var start = document.querySelector(".filters button[data-status='" + location.hash.slice(1) + "']");
if (start) { start.click(); }
window.addEventListener('load', function () {
  var shown = Array.prototype.filter.call(document.images, function (i) {
    return i.complete && i.naturalWidth > 0;
  }).length;
  document.body.dataset.imagesShown = shown;
  document.getElementById('shown').textContent = shown + ' of ' + document.images.length +
    ' thumbnails shown';
});
"""


def gallery_html(batch: BatchRecord, records: list[JobRecord], thumbs: dict[str, list[str]]) -> str:
    counts = Counter(r.status.value for r in records)
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime(batch.created_at))
    summary = ", ".join(f"{counts[s.value]} {s.value}" for s in JobStatus if counts[s.value])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(batch.name)} — Nightshift</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(batch.name)}</h1>",
        f"<div class='sub'>batch {escape(batch.id)} · submitted {made} · "
        f"{len(records)} jobs: {escape(summary)} · <span id='shown'></span></div>",
        _filters(counts),
        "<div class='grid'>",
        *(_card(r, thumbs.get(r.id, [])) for r in records),
        "</div>",
        _failures(records),
        f"<script>{_JS}</script></body></html>",
    ]
    return "\n".join(parts)


def _filters(counts: Counter) -> str:
    buttons = ["<button class='on' data-status='all'>all</button>"]
    for status in JobStatus:
        if counts[status.value]:
            buttons.append(
                f"<button data-status='{status.value}'>{status.value} "
                f"({counts[status.value]})</button>"
            )
    return f"<div class='filters'>{''.join(buttons)}</div>"


def _card(record: JobRecord, thumbs: list[str]) -> str:
    spec, status = record.spec, record.status.value
    images = "".join(
        f"<a href='{escape(_full(record, i))}'><img src='{escape(t)}' alt='seed {spec.seed}'></a>"
        for i, t in enumerate(thumbs)
    )
    took = f"{record.render_s:.1f} s" if record.render_s is not None else "—"
    worker = record.render.worker or "—"
    why = f"<div class='why'>{escape(record.error)}</div>" if record.error else ""
    return (
        f"<div class='card {status}' data-status='{status}'>{images}"
        f"<div class='p'>{escape(spec.prompt)}</div>"
        f"<div class='m'>seed {spec.seed} · {spec.width}×{spec.height} · {spec.steps} steps"
        f" · cfg {spec.guidance:g}{' · ' + escape(spec.scheduler) if spec.scheduler else ''}"
        f"<br>{status} · {took} · {escape(worker)}</div>{why}</div>"
    )


def _full(record: JobRecord, index: int) -> str:
    # Batch images sit next to the page (results/batches/<id>/), so the file name suffices.
    return record.outputs[index].rsplit("/", 1)[-1]


def _failures(records: list[JobRecord]) -> str:
    bad = [r for r in records if r.status in (JobStatus.FAILED, JobStatus.CANCELLED)]
    if not bad:
        return ""
    rows = "".join(
        f"<tr><td>{escape(r.id)}</td><td>{r.status.value}</td>"
        f"<td>{escape(r.spec.prompt)}</td><td class='why'>{escape(r.error or '')}</td></tr>"
        for r in bad
    )
    return (
        f"<h2>Failed or cancelled ({len(bad)})</h2><table><tr><th>job</th><th>status</th>"
        f"<th>prompt</th><th>reason</th></tr>{rows}</table>"
    )
