// Every page's link to /v1: fetch with the session cookie and the CSRF header, and a DOM
// builder that only ever makes text nodes of data (no markup from strings): a prompt that holds
// HTML is shown as the characters it is.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const SCOPES = ["read", "submit", "admin"];
export const scope = document.body.dataset.scope || "read";

export function can(needed) {
  return SCOPES.indexOf(scope) >= SCOPES.indexOf(needed);
}

export class ApiFailure extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const sent = { ...headers };
  if (method !== "GET") sent["X-CSRF-Token"] = csrf;
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers: sent, body, credentials: "same-origin" });
  if (response.status === 401) {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
    throw new ApiFailure(401, "signed out");
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = data?.error ?? data?.nightshift ?? {};
    throw new ApiFailure(response.status, error.message || response.statusText, error.field);
  }
  return data;
}

// el("a", {href: "/x", class: "y", onclick: f}, "text", child): strings become text nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function say(message, kind = "info") {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.dataset.kind = kind;
}

export function failed(error) {
  say(error instanceof ApiFailure ? `Refused (${error.status}): ${error.message}` : String(error), "error");
}

export function when(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "—";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function fraction(job) {
  const p = job.progress || {};
  if (job.status === "succeeded") return 1;
  if (!p.steps) return 0;
  const images = p.images || 1;
  return Math.min(1, (((p.image || 1) - 1) * p.steps + (p.step || 0)) / (images * p.steps));
}

export const jobHref = (id) => "/jobs/" + encodeURIComponent(id);
export const imageUrl = (id, n) => `/v1/jobs/${encodeURIComponent(id)}/images/${n}.png`;
export const previewUrl = (id, step) =>
  `/v1/jobs/${encodeURIComponent(id)}/preview?step=${encodeURIComponent(step ?? Date.now())}`;

// The fields of POST /v1/jobs that replay a record's spec as it was (init inputs by id).
const SPEC_FIELDS = [
  "prompt", "negative_prompt", "prompt_2", "negative_prompt_2", "model", "seed", "steps",
  "width", "height", "guidance", "images", "scheduler", "priority", "loras", "strength",
  "hires", "init_image", "mask",
];

export function requestOf(spec) {
  const request = {};
  for (const field of SPEC_FIELDS) {
    const value = spec[field];
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value) && value.length === 0) continue;
    request[field] = value;
  }
  return request;
}

export function randomSeed() {
  return Math.floor(Math.random() * 2 ** 32);
}

// Hide what this token may not do; the API refuses it anyway (403).
export function gate() {
  for (const node of document.querySelectorAll(".submit-only, .submit-only-fieldset")) {
    if (!can("submit")) {
      node.hidden = node.classList.contains("submit-only");
      if (node.tagName === "FIELDSET") node.disabled = true;
    }
  }
  for (const node of document.querySelectorAll(".admin-only")) node.hidden = !can("admin");
}

gate();
