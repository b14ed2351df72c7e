// The submit page: one job from the form (POST /v1/jobs), followed live on the same page;
// or a batch file, checked with a dry run (POST /v1/batches?dry_run=true), then confirmed.

import { api, duration, el, failed, imageUrl, randomSeed, say } from "./api.js";
import { follow } from "./live.js";

const $ = (id) => document.getElementById(id);
// Sizes a family renders well at (its native side, and the usual portrait and landscape).
const PRESETS = {
  sd15: [[512, 512], [512, 768], [768, 512], [640, 640]],
  sd2: [[768, 768], [512, 512], [640, 896], [896, 640]],
  sdxl: [[1024, 1024], [896, 1152], [1152, 896], [832, 1216], [1216, 832]],
};
let models = [];
let initFromJob = null; // an init image taken from a job's PNG (?init=<job id>), as base64

async function loadChoices() {
  try {
    const [catalog, loras] = await Promise.all([api("/v1/models"), api("/v1/loras")]);
    models = catalog.models;
    for (const model of models) {
      const label = `${model.name} (${model.family}${model.default ? ", default" : ""})`;
      $("model").append(el("option", { value: model.name }, label));
    }
    presets();
    const names = Object.keys(loras.loras ?? {});
    $("loras").dataset.names = JSON.stringify(names);
    $("loras-help").textContent = names.length ? `${names.length} LoRA(s) on the workers` : "No LoRA on the live workers.";
  } catch (error) {
    failed(error);
  }
}

function family() {
  const chosen = models.find((m) => m.name === $("model").value) ?? models.find((m) => m.default);
  return chosen?.family ?? "sd15";
}

function presets() {
  const sizes = PRESETS[family()] ?? PRESETS.sd15;
  $("preset").replaceChildren(
    el("option", { value: "" }, "the model's default"),
    ...sizes.map(([w, h]) => el("option", { value: `${w}x${h}` }, `${w} × ${h}`)),
  );
}

function addLora() {
  const names = JSON.parse($("loras").dataset.names || "[]");
  const n = $("loras").children.length;
  const remove = el("button", { type: "button", "aria-label": `Remove LoRA ${n + 1}` }, "Remove");
  const item = el("li", { class: "row" },
    el("div", { class: "field" }, el("label", { for: `lora-${n}` }, `LoRA ${n + 1}`),
      names.length
        ? el("select", { id: `lora-${n}`, class: "lora-name" }, names.map((name) => el("option", {}, name)))
        : el("input", { id: `lora-${n}`, class: "lora-name" })),
    el("div", { class: "field" }, el("label", { for: `lora-w-${n}` }, "Weight"),
      el("input", { id: `lora-w-${n}`, class: "lora-weight", type: "number", step: "0.05", value: "1", inputmode: "decimal" })),
    remove);
  remove.addEventListener("click", () => item.remove());
  $("loras").append(item);
}

const number = (id, parse = Number) => ($(id).value === "" ? undefined : parse($(id).value));

function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// The hires pass's fields the form has filled in; one left empty takes the API's default.
function hires() {
  const pass = {
    scale: number("hires_scale", parseFloat),
    steps: number("hires_steps", (v) => parseInt(v, 10)),
    strength: number("hires_strength", parseFloat),
  };
  for (const key of Object.keys(pass)) if (pass[key] === undefined || Number.isNaN(pass[key])) delete pass[key];
  return pass;
}

async function request() {
  const body = { prompt: $("prompt").value };
  if ($("negative_prompt").value) body.negative_prompt = $("negative_prompt").value;
  if ($("model").value) body.model = $("model").value;
  for (const field of ["width", "height", "steps", "images"]) body[field] = number(field, (v) => parseInt(v, 10));
  body.guidance = number("guidance", parseFloat);
  body.seed = number("seed", (v) => parseInt(v, 10));
  body.strength = number("strength", parseFloat);
  if ($("scheduler").value) body.scheduler = $("scheduler").value;
  const loras = [...document.querySelectorAll("#loras li")].map((li) => ({
    name: li.querySelector(".lora-name").value,
    weight: parseFloat(li.querySelector(".lora-weight").value || "1"),
  })).filter((l) => l.name);
  if (loras.length) body.loras = loras;
  if ($("init_image").files[0]) body.init_image = await fileBase64($("init_image").files[0]);
  else if (initFromJob) body.init_image = initFromJob;
  if ($("mask").files[0]) body.mask = await fileBase64($("mask").files[0]);
  if ($("hires").checked) body.hires = hires();
  for (const key of Object.keys(body)) if (body[key] === undefined || Number.isNaN(body[key])) delete body[key];
  return body;
}

async function submitJob(event) {
  event.preventDefault();
  if (!$("prompt").value.trim()) {
    $("prompt").setAttribute("aria-invalid", "true");
    $("prompt").focus();
    return say("A prompt is needed.", "error");
  }
  $("prompt").removeAttribute("aria-invalid");
  try {
    const job = await api("/v1/jobs", { method: "POST", json: await request() });
    say(`Submitted ${job.id}`);
    $("result").hidden = false;
    follow(job, $("live"), (record) => say(`${record.id}: ${record.status}`));
    $("result-h").focus?.();
  } catch (error) {
    if (error.field && $(error.field)) {
      $(error.field).setAttribute("aria-invalid", "true");
      $(error.field).focus();
    }
    failed(error);
  }
}

// ?init=<job id>: that job's first image as the init image, its prompt as the start.
async function initFromQuery() {
  const id = new URLSearchParams(location.search).get("init");
  if (!id) return;
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    const response = await fetch(imageUrl(id, 0), { credentials: "same-origin" });
    if (!response.ok) throw new Error(`job ${id} has no image to start from`);
    initFromJob = await fileBase64(await response.blob());
    $("init-preview").src = initFromJob;
    $("init-preview").alt = `init image: ${job.prompt}`;
    $("init-preview").hidden = false;
    $("init-from").textContent = `Init image: job ${id}'s first image.`;
    $("prompt").value = job.prompt;
    if (!$("strength").value) $("strength").value = "0.6";
  } catch (error) {
    failed(error);
  }
}

// --- batch files ---------------------------------------------------------------------------

const FORMATS = { yaml: "yaml", yml: "yaml", json: "json", jsonl: "jsonl", csv: "csv" };
let pending = null;

function batchQuery(file) {
  const [stem, ext] = [file.name.replace(/\.[^.]*$/, ""), file.name.split(".").pop().toLowerCase()];
  const name = stem.replace(/[^A-Za-z0-9_-]/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 64) || "web";
  return `format=${FORMATS[ext] ?? "yaml"}&name=${encodeURIComponent(name)}`;
}

async function dryRun(event) {
  event.preventDefault();
  const file = $("batch-file").files[0];
  if (!file) return say("Choose a batch file first.", "error");
  try {
    const text = await file.text();
    const query = batchQuery(file);
    const dry = await api(`/v1/batches?dry_run=true&${query}`, { method: "POST", body: text });
    pending = { text, query };
    $("dry").hidden = false;
    $("dry-summary").textContent = `${dry.jobs} job(s); ` +
      (dry.estimate_s === null ? "no time estimate (no finished job to time)" : `about ${duration(dry.estimate_s)} of rendering (estimate)`);
    $("dry-sample").replaceChildren(...dry.sample.map((s) =>
      el("li", {}, el("span", { class: "prompt" }, s.prompt), el("span", { class: "help" }, ` ${s.model ?? ""} ${s.width}×${s.height}, ${s.steps} steps, seed ${s.seed}`))));
    $("batch-done").textContent = "";
    $("confirm-batch").disabled = false;
    $("dry-h").focus?.();
  } catch (error) {
    failed(error);
  }
}

async function confirmBatch() {
  if (!pending) return;
  try {
    $("confirm-batch").disabled = true;
    const done = await api(`/v1/batches?${pending.query}`, { method: "POST", body: pending.text });
    $("batch-done").replaceChildren(
      `Batch ${done.batch_id}: ${done.enqueued} of ${done.total} job(s) queued${done.existing ? " (this file was submitted before)" : ""}. `,
      el("a", { href: "/batches" }, "See it on the batches page"));
    say(`Batch ${done.batch_id} submitted`);
    pending = null;
  } catch (error) {
    $("confirm-batch").disabled = false;
    failed(error);
  }
}

$("model").addEventListener("change", presets);
$("preset").addEventListener("change", () => {
  const [w, h] = $("preset").value.split("x");
  $("width").value = w ?? "";
  $("height").value = h ?? "";
});
$("random-seed").addEventListener("click", () => ($("seed").value = String(randomSeed())));
$("add-lora").addEventListener("click", addLora);
$("job-form").addEventListener("submit", submitJob);
$("batch-form").addEventListener("submit", dryRun);
$("confirm-batch").addEventListener("click", confirmBatch);
loadChoices();
initFromQuery();
