// The queue page: what renders now on each worker (progress, live preview), what waits by
// priority and model, when the queue should be empty, pause and resume, cancel a job or its
// batch, move a waiting job to the front. Lists are read from /v1 and kept live by the queue's
// event stream (/v1/events).

import { api, can, duration, el, failed, fraction, imageUrl, jobHref, say, when } from "./api.js";
import { previewImage, refreshPreview } from "./live.js";

const $ = (id) => document.getElementById(id);
const shown = new Map(); // running job id -> {bar, img}
let refreshTimer = null;

function cancelButtons(job) {
  if (!can("submit")) return [];
  const buttons = [
    el("button", { type: "button", class: "cancel-job", onclick: () => act(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`, `Cancel asked for ${job.id}`) }, "Cancel job"),
  ];
  if (job.batch_id) {
    buttons.push(
      el("button", { type: "button", class: "cancel-batch", onclick: () => {
        if (confirm(`Cancel every job of batch ${job.batch_id}?`)) act(`/v1/batches/${encodeURIComponent(job.batch_id)}/cancel`, `Batch ${job.batch_id} cancelled`);
      } }, "Cancel batch"),
    );
  }
  return buttons;
}

async function act(path, done) {
  try {
    await api(path, { method: "POST" });
    say(done);
    soon();
  } catch (error) {
    failed(error);
  }
}

function runningItem(job) {
  const value = Math.round(fraction(job) * 100);
  const bar = el("progress", { max: "100", value: String(value), "aria-label": `progress of ${job.prompt}` }, `${value}%`);
  const img = previewImage(job);
  shown.set(job.id, { bar, img });
  const p = job.progress || {};
  const step = el("span", { class: "step" }, p.steps ? `step ${p.step}/${p.steps}, image ${p.image}/${p.images}` : "starting");
  shown.get(job.id).step = step;
  return el(
    "li",
    { class: "job running", dataset: { job: job.id } },
    img,
    el("div", { class: "body" },
      el("a", { href: jobHref(job.id), class: "prompt" }, job.prompt),
      el("p", { class: "help" }, `${job.model ?? "default model"} · ${job.render?.worker || "a worker"} · ${job.width}×${job.height}`),
      bar, step,
      el("div", { class: "actions" }, cancelButtons(job))),
  );
}

function frontButton(job) {
  if (!can("submit")) return [];
  const path = `/v1/jobs/${encodeURIComponent(job.id)}/front`;
  return [el("button", { type: "button", class: "front-job", onclick: () => act(path, `${job.id} renders next`) }, "To front")];
}

function queuedItem(job) {
  return el("li", { class: "job", dataset: { job: job.id } },
    el("a", { href: jobHref(job.id), class: "prompt" }, job.prompt),
    el("span", { class: "help" }, ` priority ${job.spec?.priority ?? "?"} · ${job.model ?? "default"}${job.batch_id ? " · batch " + job.batch_id : ""}`),
    el("span", { class: "actions" }, frontButton(job), cancelButtons(job)));
}

// The waiting jobs in about the order workers take them: priority 0 first; within a priority a
// job moved to the front (spec.moved) before the others, then the oldest first.
function servedOrder(a, b) {
  const [pa, pb] = [a.spec?.priority ?? 9, b.spec?.priority ?? 9];
  if (pa !== pb) return pa - pb;
  const [ma, mb] = [a.spec?.moved ?? 0, b.spec?.moved ?? 0];
  if (ma !== mb) return mb - ma;
  return a.created_at - b.created_at;
}

function recentItem(job) {
  const thumb = job.status === "succeeded" && job.outputs.length
    ? el("img", { src: imageUrl(job.id, 0), alt: job.prompt, loading: "lazy", class: "thumb", width: 128, height: 128 })
    : el("span", { class: "thumb none", "aria-hidden": "true" }, job.status);
  return el("li", { class: "card-item", dataset: { job: job.id, status: job.status } },
    el("a", { href: jobHref(job.id) }, thumb, el("span", { class: "prompt" }, job.prompt)),
    el("span", { class: "help" }, `${job.status} · ${when(job.finished_at)}`));
}

async function load() {
  try {
    const [queue, running, queued, recent, done, workers] = await Promise.all([
      api("/v1/queue"),
      api("/v1/jobs?status=started&limit=50"),
      api("/v1/jobs?status=queued&limit=30"),
      api("/v1/jobs?limit=12"),
      api("/v1/jobs?status=succeeded&limit=30"),
      api("/v1/workers").catch(() => ({ workers: [] })),
    ]);
    $("queue-state").textContent = queue.paused ? "Paused: workers take no new jobs" : "Running";
    $("queue-state").dataset.paused = String(queue.paused);
    $("pause").disabled = queue.paused;
    $("resume").disabled = !queue.paused;
    $("queue-total").textContent = `${queue.total} waiting`;
    $("queue-eta").textContent = eta(queue.total, running.jobs.length, done.jobs, workers.workers.length);
    $("waiting").replaceChildren(...queue.waiting.map((w) =>
      el("tr", {}, el("td", {}, String(w.priority)), el("td", {}, w.model ?? "(none)"), el("td", {}, String(w.depth)))));
    shown.clear();
    $("running").replaceChildren(...(running.jobs.length ? running.jobs.map(runningItem) : [el("li", { class: "help" }, "Nothing is rendering.")]));
    const next = [...queued.jobs].sort(servedOrder);
    $("queued").replaceChildren(...(next.length ? next.map(queuedItem) : [el("li", { class: "help" }, "Nothing waits.")]));
    $("recent").replaceChildren(...recent.jobs.filter((j) => !["queued", "started"].includes(j.status)).map(recentItem));
    $("workers").textContent = `${workers.workers.length} worker(s) online` +
      (workers.workers.length ? ": " + workers.workers.map((w) => w.worker).join(", ") : "");
    document.body.dataset.ready = "1";
  } catch (error) {
    failed(error);
  }
}

// When the queue should be empty: the waiting jobs times the median render time of the last
// finished ones, shared among the workers. An estimate, and said to be one.
function eta(waiting, running, finished, workerCount) {
  const times = finished.map((j) => j.render_s).filter((s) => s > 0).sort((a, b) => a - b);
  if (!waiting && !running) return "the queue is empty";
  if (!times.length) return "no estimate yet (no finished job to time)";
  const median = times[Math.floor(times.length / 2)];
  const seconds = ((waiting + running) * median) / Math.max(1, workerCount);
  return `empty in about ${duration(seconds)} (estimate: median of the last ${times.length} jobs)`;
}

function soon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(load, 300);
}

function listen() {
  const source = new EventSource("/v1/events");
  source.addEventListener("progress", (e) => {
    const data = JSON.parse(e.data);
    const item = shown.get(data.id);
    if (!item) return soon();
    const value = Math.round(fraction(data) * 100);
    item.bar.value = value;
    item.bar.textContent = `${value}%`;
    const p = data.progress || {};
    item.step.textContent = `step ${p.step}/${p.steps}, image ${p.image}/${p.images}`;
    refreshPreview(item.img, data.id, data);
  });
  for (const kind of ["created", "status", "finished", "update", "gap"]) source.addEventListener(kind, soon);
}

$("pause").addEventListener("click", () => act("/v1/queue/pause", "Paused: workers finish their job and take no more"));
$("resume").addEventListener("click", () => act("/v1/queue/resume", "Resumed"));
load();
listen();
