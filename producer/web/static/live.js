// One job followed live: a progress bar, the preview that sharpens as it denoises, and its
// images as they appear. Fed by the job's own event stream (/v1/jobs/{id}/events).

import { el, fraction, imageUrl, jobHref, previewUrl } from "./api.js";

const PREVIEW_EVERY_MS = 700; // without a preview marker in the events, refresh this often

export function progressBar(job) {
  const value = Math.round(fraction(job) * 100);
  return el("progress", { max: "100", value: String(value), "aria-label": `progress of ${job.id}` }, `${value}%`);
}

export function previewImage(job) {
  const img = el("img", { class: "preview", alt: `live preview: ${job.prompt ?? job.id}`, hidden: true });
  img.addEventListener("load", () => (img.hidden = false));
  img.addEventListener("error", () => (img.hidden = true));
  return img;
}

// Refresh a preview <img> for a progress event; a marker (data.preview) says a new one exists.
export function refreshPreview(img, jobId, data) {
  const now = Date.now();
  const marker = data.preview ?? data.progress?.preview;
  if (marker === undefined && now - (Number(img.dataset.at) || 0) < PREVIEW_EVERY_MS) return;
  img.dataset.at = String(now);
  const step = marker ?? `${data.progress?.image ?? 1}-${data.progress?.step ?? 0}`;
  img.src = previewUrl(jobId, step);
}

export function imageList(job) {
  return el(
    "ul",
    { class: "image-list" },
    (job.links?.images ?? []).map((_, n) =>
      el(
        "li",
        {},
        el("img", { src: imageUrl(job.id, n), alt: job.prompt ?? "", class: "result", width: job.width, height: job.height }),
        el("a", { href: imageUrl(job.id, n), download: `${job.id}-${n}.png` }, `Download image ${n + 1} (PNG)`),
      ),
    ),
  );
}

// Follow `job` into `box`; onEnd(record) when it ends. Returns a function that stops.
export function follow(job, box, onEnd = () => {}) {
  const status = el("p", { class: "status", role: "status", "data-status": job.status }, job.status);
  const bar = progressBar(job);
  const img = previewImage(job);
  const images = el("div", { class: "images" });
  box.replaceChildren(
    el("p", {}, el("a", { href: jobHref(job.id) }, job.id)),
    status,
    bar,
    img,
    images,
  );
  const source = new EventSource(`/v1/jobs/${encodeURIComponent(job.id)}/events`);
  const show = (data) => {
    status.textContent = data.status + (data.error ? `: ${data.error}` : "");
    status.dataset.status = data.status;
    const next = progressBar({ ...job, ...data, id: job.id });
    bar.value = next.value;
    bar.textContent = next.textContent;
  };
  source.addEventListener("record", (e) => show(JSON.parse(e.data)));
  source.addEventListener("status", (e) => show(JSON.parse(e.data)));
  source.addEventListener("progress", (e) => {
    const data = JSON.parse(e.data);
    show(data);
    refreshPreview(img, job.id, data);
  });
  const end = async () => {
    source.close();
    const response = await fetch(`/v1/jobs/${encodeURIComponent(job.id)}`, { credentials: "same-origin" });
    if (!response.ok) return;
    const record = await response.json();
    show(record);
    img.hidden = true;
    images.replaceChildren(imageList(record));
    onEnd(record);
  };
  source.addEventListener("finished", end);
  source.addEventListener("record", (e) => {
    if (["succeeded", "failed", "cancelled"].includes(JSON.parse(e.data).status)) end();
  });
  return () => source.close();
}
