// The image page: a job's record in full, its PNGs to download, and Replay (the same spec
// again), Vary seed (the same with a new seed), Use as init image (/submit?init=<id>).
// A job still running is followed live.

import { api, can, el, failed, randomSeed, requestOf, say, when } from "./api.js";
import { follow, imageList } from "./live.js";

const $ = (id) => document.getElementById(id);
const jobId = $("job-id").dataset.job;

function row(label, value) {
  if (value === null || value === undefined || value === "") value = "—";
  if (typeof value === "object") value = JSON.stringify(value);
  return el("tr", {}, el("th", { scope: "row" }, label), el("td", {}, String(value)));
}

// What the job renders from: a prompt alone, an init image, or an init image and a mask.
function mode(spec) {
  if (!spec.init_image) return "txt2img";
  return spec.mask ? "inpaint (init image and mask)" : "img2img (init image)";
}

// "64 × 64 upscaled ×1.5 (lanczos), 2 steps at strength 0.5": the first pass's size (Size
// is the images'), and the job's steps when the pass set none.
function hires(job) {
  const pass = job.spec.hires;
  if (!pass) return "";
  const steps = pass.steps ?? job.spec.steps;
  const first = `${job.spec.width} × ${job.spec.height}`;
  return `${first} upscaled ×${pass.scale} (${pass.upscaler}), ${steps} steps at strength ${pass.strength}`;
}

function table(job) {
  const spec = job.spec;
  return [
    row("Prompt", job.prompt),
    row("Negative prompt", job.negative_prompt),
    row("Status", job.status + (job.error ? `: ${job.error}` : "")),
    row("Model", `${job.model ?? "default"}${job.model_family ? ` (${job.model_family})` : ""}`),
    row("Seed", job.seed),
    row("Size", `${job.width} × ${job.height}`),
    row("Steps", spec.steps),
    row("Guidance", spec.guidance),
    row("Sampler", spec.scheduler ?? job.render?.sampler),
    row("Images", job.images),
    row("LoRAs", spec.loras?.length ? spec.loras.map((l) => `${l.name} ${l.weight}`).join(", ") : ""),
    row("Mode", mode(spec)),
    row("Init image", spec.init_image ? `${spec.init_image} (strength ${spec.strength ?? "default"})` : ""),
    row("Mask", spec.mask),
    row("Hires fix", hires(job)),
    row("Batch", job.batch_id),
    row("Priority", spec.priority),
    row("Worker", job.render?.worker ? `${job.render.worker} (${job.render.device})` : ""),
    row("Created", when(job.created_at)),
    row("Finished", when(job.finished_at)),
    row("Waited", job.queue_wait_s === null ? null : `${job.queue_wait_s.toFixed(1)} s`),
    row("Render time", job.render_s === null ? null : `${job.render_s.toFixed(1)} s`),
    row("Attempts", job.attempts),
  ];
}

async function again(spec) {
  try {
    const job = await api("/v1/jobs", { method: "POST", json: requestOf(spec) });
    say(`Submitted ${job.id}`);
    location.assign(`/jobs/${encodeURIComponent(job.id)}`);
  } catch (error) {
    failed(error);
  }
}

async function load() {
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
    document.title = `${job.prompt.slice(0, 60)} · Nightshift`;
    $("meta").tBodies[0].replaceChildren(...table(job));
    if (["queued", "started"].includes(job.status)) {
      follow(job, $("live"), () => load());
      $("cancel").hidden = !can("submit");
    } else {
      $("live").replaceChildren();
      $("cancel").hidden = true;
      $("images").replaceWith(Object.assign(imageList(job), { id: "images" }));
    }
    $("replay").onclick = () => again(job.spec);
    $("vary").onclick = () => again({ ...job.spec, seed: randomSeed() });
    $("use-init").href = `/submit?init=${encodeURIComponent(job.id)}`;
    $("use-init").hidden = !job.outputs.length;
    $("cancel").onclick = async () => {
      try {
        const answer = await api(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`, { method: "POST" });
        say(answer.message);
      } catch (error) {
        failed(error);
      }
    };
    document.body.dataset.ready = "1";
  } catch (error) {
    failed(error);
  }
}

load();
