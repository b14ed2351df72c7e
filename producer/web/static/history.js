// The history: every job, newest first, searched and filtered through GET /v1/history
// (SQLite FTS5 on the server), a page at a time as the list scrolls into view; thumbnails
// load lazily. Without /v1/history (an older server) it pages /v1/jobs and says so.

import { api, ApiFailure, el, failed, imageUrl, jobHref, when } from "./api.js";

const $ = (id) => document.getElementById(id);
const PAGE = 40;
const FIELDS = ["q", "status", "model", "lora", "batch", "worker", "since", "until"];
let cursor = null;
let loading = false;
let done = false;
let generation = 0;
let fallback = false;

function epoch(date, endOfDay) {
  if (!date) return null;
  const t = new Date(`${date}T00:00:00`).getTime() / 1000;
  return endOfDay ? t + 86400 : t;
}

function query() {
  const params = new URLSearchParams();
  for (const field of FIELDS) {
    const value = $(field).value.trim();
    if (!value) continue;
    if (field === "since" || field === "until") params.set(field, String(epoch(value, field === "until")));
    else params.set(field, value);
  }
  params.set("limit", String(PAGE));
  if (cursor) params.set("cursor", cursor);
  return params;
}

function card(job) {
  const thumb = job.status === "succeeded" && job.outputs?.length
    ? el("img", { src: imageUrl(job.id, 0), alt: job.prompt, loading: "lazy", decoding: "async", class: "thumb", width: 160, height: 160 })
    : el("span", { class: "thumb none", "aria-hidden": "true" }, job.status);
  return el("li", { class: "card-item", dataset: { job: job.id, status: job.status } },
    el("a", { href: jobHref(job.id) }, thumb, el("span", { class: "prompt" }, job.prompt)),
    el("span", { class: "help" }, `${job.status} · ${job.model ?? "default"} · ${when(job.created_at)}`));
}

async function fetchPage(params) {
  if (!fallback) {
    try {
      return await api(`/v1/history?${params}`);
    } catch (error) {
      if (!(error instanceof ApiFailure) || error.status !== 404 || error.field) throw error;
      fallback = true; // no /v1/history here: /v1/jobs, fewer filters, no text search
      $("history-note").textContent = "This server has no history search: listing jobs by status, model and batch only.";
    }
  }
  const plain = new URLSearchParams();
  for (const key of ["status", "model", "batch", "limit", "cursor"]) if (params.get(key)) plain.set(key, params.get(key));
  return api(`/v1/jobs?${plain}`);
}

async function more() {
  if (loading || done) return;
  loading = true;
  const mine = generation;
  try {
    const page = await fetchPage(query());
    if (mine !== generation) return;
    $("history").append(...page.jobs.map(card));
    cursor = page.next_cursor;
    done = !cursor;
    $("more").textContent = done ? ($("history").children.length ? "That is all." : "No job matches.") : "Loading more as you scroll…";
    if (!document.body.dataset.ready) {
      document.body.dataset.ready = String(performance.now());
      performance.mark("history-first-screen");
    }
  } catch (error) {
    failed(error);
  } finally {
    loading = false;
  }
  if (!done && mine === generation && visible($("more"))) more();
}

function visible(node) {
  const box = node.getBoundingClientRect();
  return box.top < window.innerHeight + 400;
}

function restart(event) {
  event?.preventDefault();
  generation += 1;
  cursor = null;
  done = false;
  loading = false;
  $("history").replaceChildren();
  const url = new URL(location.href);
  url.search = "";
  for (const field of FIELDS) if ($(field).value.trim()) url.searchParams.set(field, $(field).value.trim());
  history.replaceState(null, "", url);
  more();
}

const start = new URLSearchParams(location.search);
for (const field of FIELDS) if (start.get(field)) $(field).value = start.get(field);
$("filters").addEventListener("submit", restart);
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) more();
}, { rootMargin: "400px" }).observe($("more"));
more();
