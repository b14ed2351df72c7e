// Every batch: its progress, ETA, failures with their reasons, its morning report.

import { api, can, duration, el, failed, jobHref, say, when } from "./api.js";

const $ = (id) => document.getElementById(id);

async function batchItem(batch) {
  const id = encodeURIComponent(batch.id);
  const [status, failures] = await Promise.all([
    api(`/v1/batches/${id}`),
    api(`/v1/jobs?batch=${id}&status=failed&limit=20`).catch(() => ({ jobs: [] })),
  ]);
  const total = batch.total || Object.values(status.counts).reduce((a, b) => a + b, 0) || 1;
  const ended = status.ended ?? 0;
  const bar = el("progress", { max: String(total), value: String(ended), "aria-label": `progress of batch ${batch.id}` }, `${ended}/${total}`);
  const counts = Object.entries(status.counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
  const eta = status.done ? "done" : status.eta_s === null ? "no ETA yet" : `ETA ${duration(status.eta_s)}`;
  const actions = [];
  if (can("submit") && !status.done) {
    actions.push(el("button", { type: "button", onclick: async () => {
      try {
        await api(`/v1/batches/${id}/cancel`, { method: "POST" });
        say(`Batch ${batch.id} cancelled`);
        load();
      } catch (error) {
        failed(error);
      }
    } }, "Cancel batch"));
  }
  if (can("admin") && (status.counts.failed || status.counts.cancelled)) {
    actions.push(el("button", { type: "button", onclick: async () => {
      try {
        const done = await api(`/v1/batches/${id}/retry?failed=true`, { method: "POST" });
        say(`${done.requeued} job(s) of ${batch.id} queued again`);
        load();
      } catch (error) {
        failed(error);
      }
    } }, "Retry failed"));
  }
  return el("li", { class: "card", dataset: { batch: batch.id } },
    el("h2", {}, batch.name ?? batch.id),
    el("p", { class: "help" }, `${batch.id} · made ${when(batch.created_at)}`),
    bar,
    el("p", {}, `${ended} of ${total} ended (${counts || "nothing yet"}) · ${status.images_per_minute ? status.images_per_minute.toFixed(1) + " images/min · " : ""}${eta}`),
    el("p", {}, status.reports
      ? el("a", { href: `/v1/batches/${id}/report/index.html` }, "Morning report")
      : "No morning report yet (written when its last job ends)",
      " · ",
      el("a", { href: `/history?batch=${id}` }, "Its jobs in the history")),
    failures.jobs.length
      ? el("details", {}, el("summary", {}, `${failures.jobs.length} failure(s)`),
        el("ul", {}, failures.jobs.map((j) => el("li", {}, el("a", { href: jobHref(j.id) }, j.prompt), `: ${j.error ?? "no reason recorded"}`))))
      : null,
    el("div", { class: "actions" }, actions));
}

async function load() {
  try {
    const found = await api("/v1/batches?limit=50");
    const items = await Promise.all(found.batches.map(batchItem));
    $("batches").replaceChildren(...(items.length ? items : [el("li", { class: "help" }, "No batch yet.")]));
    document.body.dataset.ready = "1";
  } catch (error) {
    failed(error);
  }
}

load();
