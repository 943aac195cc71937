// The playground page: the form, the job being watched, the history and the "Show code" dialog.

import { Api, ApiError } from "./api.js";
import { History, captureThumbnail } from "./history.js";
import { SNIPPETS } from "./snippets.js";

const MAX_TEXT_BYTES = 2048;
const SEED_MAX = 4294967295;
const KEY_STORAGE = "framecast.apiKey";
const TEXT_FIELDS = ["prompt", "negative_prompt"];
const SELECT_FIELDS = ["aspect_ratio", "resolution", "duration", "style", "thinking_type"];
const SWITCH_FIELDS = ["generate_audio_switch", "generate_multi_clip_switch"];
const FIELDS = [...TEXT_FIELDS, ...SELECT_FIELDS, ...SWITCH_FIELDS, "seed"];
const STEP_RE = /step\s+(\d+)\s*\/\s*(\d+)/i;
const MAX_STREAMS = 3; // of the browser's six connections per server; further requests are polled

const $ = (id) => document.getElementById(id);
const encoder = new TextEncoder();
const api = new Api(() => localStorage.getItem(KEY_STORAGE) || "");
const history = new History();
const jobs = new Map();
let shownJob = null;
let openStreams = 0;

// ---------------------------------------------------------------- form

function byteLength(text) {
  return encoder.encode(text).length;
}

function updateCounter(field) {
  const size = byteLength($(field).value);
  const counter = $(`${field}-count`);
  const over = size - MAX_TEXT_BYTES;
  counter.textContent =
    over > 0
      ? `${size} / ${MAX_TEXT_BYTES} bytes: ${over} over the limit, the server will refuse it`
      : `${size} / ${MAX_TEXT_BYTES} bytes`;
  counter.classList.toggle("over", over > 0);
}

/** 1080p allows 5 or 8 seconds only, as the API rules: disable 10 s and move off it, saying so. */
function applyDurationRule() {
  const is1080 = $("resolution").value === "1080p";
  const duration = $("duration");
  const ten = duration.querySelector('option[value="10"]');
  const note = $("duration-note");
  ten.disabled = is1080;
  if (is1080 && duration.value === "10") {
    duration.value = "8";
    note.textContent = "1080p is limited to 5 or 8 s: duration changed from 10 s to 8 s.";
    note.hidden = false;
  } else if (is1080) {
    note.textContent = "1080p is limited to 5 or 8 s.";
    note.hidden = false;
  } else {
    note.hidden = true;
  }
  updateOutputHint();
}

/** PixVerse's output sizes: the tier is the short side; the aspect ratio sets the long one. */
function outputSize(resolution, aspectRatio) {
  const short = Number.parseInt(resolution, 10);
  const [w, h] = aspectRatio.split(":").map(Number);
  return w >= h ? [Math.round((short * w) / h), short] : [short, Math.round((short * h) / w)];
}

function updateOutputHint() {
  const [w, h] = outputSize($("resolution").value, $("aspect_ratio").value);
  $("output-hint").textContent = `Output: ${w}×${h}, ${$("duration").value} s, H.264 MP4.`;
}

function applySeedRandom() {
  const random = $("seed-random").checked;
  const seed = $("seed");
  seed.disabled = random;
  if (!random && seed.value === "") seed.value = String(Math.floor(Math.random() * SEED_MAX));
}

/** The request body for the current form; optional fields left at their default are not sent. */
function readInput() {
  const input = {
    prompt: $("prompt").value,
    aspect_ratio: $("aspect_ratio").value,
    resolution: $("resolution").value,
    duration: $("duration").value,
  };
  if ($("negative_prompt").value) input.negative_prompt = $("negative_prompt").value;
  if ($("style").value) input.style = $("style").value;
  if (!$("seed-random").checked && $("seed").value.trim() !== "") input.seed = Number($("seed").value);
  if ($("generate_audio_switch").checked) input.generate_audio_switch = true;
  if ($("generate_multi_clip_switch").checked) input.generate_multi_clip_switch = true;
  if ($("thinking_type").value) input.thinking_type = $("thinking_type").value;
  return input;
}

function fillForm(input) {
  for (const field of TEXT_FIELDS) $(field).value = input[field] ?? "";
  $("aspect_ratio").value = input.aspect_ratio ?? "16:9";
  $("resolution").value = input.resolution ?? "720p";
  $("duration").value = String(input.duration ?? "5");
  $("style").value = input.style ?? "";
  $("thinking_type").value = input.thinking_type ?? "";
  for (const field of SWITCH_FIELDS) $(field).checked = Boolean(input[field]);
  const hasSeed = input.seed !== undefined && input.seed !== null;
  $("seed-random").checked = !hasSeed;
  $("seed").value = hasSeed ? String(input.seed) : "";
  applySeedRandom();
  applyDurationRule();
  TEXT_FIELDS.forEach(updateCounter);
  clearErrors();
}

function clearErrors() {
  for (const field of FIELDS) {
    const slot = $(`${field}-error`);
    slot.hidden = true;
    slot.textContent = "";
    $(field).removeAttribute("aria-invalid");
  }
  $("form-error").hidden = true;
}

function showFormError(message) {
  $("form-error").textContent = message;
  $("form-error").hidden = false;
}

/** Put each 422 message next to its field; anything without a field goes to the form's own error line. */
function showValidationErrors(body) {
  const details = Array.isArray(body?.detail) ? body.detail : [];
  const general = [];
  let first = null;
  for (const item of details) {
    const loc = Array.isArray(item.loc) ? item.loc : [];
    const field = loc[0] === "body" ? loc[1] : undefined;
    if (FIELDS.includes(field)) {
      const slot = $(`${field}-error`);
      slot.textContent = slot.textContent ? `${slot.textContent} ${item.msg}` : item.msg;
      slot.hidden = false;
      $(field).setAttribute("aria-invalid", "true");
      first ??= field;
    } else {
      general.push(field ? `${field}: ${item.msg}` : item.msg);
    }
  }
  if (!details.length) general.push(typeof body?.detail === "string" ? body.detail : "Invalid input.");
  showFormError(`The server rejected the input (422). ${general.join(" ")}`.trim());
  if (first && !$(first).disabled) $(first).focus();
}

async function onSubmit(event) {
  event.preventDefault();
  clearErrors();
  if (!$("seed-random").checked && !/^\d+$/.test($("seed").value.trim())) {
    $("seed-error").textContent = `Enter a whole number from 0 to ${SEED_MAX}, or tick Random.`;
    $("seed-error").hidden = false;
    $("seed").focus();
    return;
  }
  // Byte limits are shown, not enforced here: the server is the authority and its 422 is rendered.
  const input = readInput();
  const button = $("submit");
  button.disabled = true;
  button.textContent = "Submitting…";
  try {
    const queued = await api.submit(input);
    const job = new Job(queued.request_id, input);
    jobs.set(job.id, job);
    history.add({ id: job.id, created: Date.now(), input, status: "IN_QUEUE" });
    renderHistory();
    job.onStatus(queued);
    showJob(job);
    job.start();
  } catch (err) {
    handleError(err);
  } finally {
    button.disabled = false;
    button.textContent = "Generate";
  }
}

function handleError(err) {
  if (err instanceof ApiError && err.status === 422) return showValidationErrors(err.body);
  if (err instanceof ApiError && err.status === 401) askForKey(err.message);
  showFormError(err.message);
}

// ---------------------------------------------------------------- jobs

/** One request followed through the queue: its status, logs, progress and outcome. */
class Job {
  constructor(id, input) {
    this.id = id;
    this.input = input;
    this.status = "IN_QUEUE";
    this.queuePosition = null;
    this.logs = [];
    this.step = null;
    this.result = null;
    this.error = null;
    this.errorType = null;
    this.metrics = null;
    this.cancelling = false;
  }

  get outcome() {
    if (this.status !== "COMPLETED") return this.status;
    if (this.error === null) return "COMPLETED";
    return isCancellation(this.errorType, this.error) ? "CANCELLED" : "FAILED";
  }

  start() {
    const stream = openStreams < MAX_STREAMS;
    if (stream) openStreams += 1;
    api
      .watch(this.id, (s) => this.onStatus(s), { stream })
      .then(() => this.finish())
      .catch((err) => this.fail(err))
      .finally(() => {
        if (stream) openStreams -= 1;
      });
  }

  onStatus(status) {
    this.status = status.status ?? this.status;
    if ("queue_position" in status) this.queuePosition = status.queue_position;
    this.addLogs(status.logs);
    if (status.metrics) this.metrics = status.metrics;
    if (status.error) {
      this.error = status.error;
      this.errorType = status.error_type ?? null;
    }
    const entry = history.get(this.id);
    if (entry && entry.status !== this.outcome) {
      history.update(this.id, { status: this.outcome });
      renderHistory();
    }
    this.changed();
  }

  /** Status events may carry all logs so far or only new ones: append only what is new. */
  addLogs(logs) {
    if (!Array.isArray(logs) || !logs.length) return;
    const known = this.logs;
    const cumulative = known.length > 0 && sameLog(logs[0], known[0]);
    const fresh = cumulative ? logs.slice(known.length) : logs;
    for (const entry of fresh) {
      known.push(entry);
      const match = STEP_RE.exec(entry.message ?? "");
      if (match) this.step = { i: Number(match[1]), n: Number(match[2]) };
    }
  }

  async finish() {
    if (this.error === null) {
      try {
        this.result = await api.result(this.id);
      } catch (err) {
        return this.fail(err);
      }
    }
    history.update(this.id, {
      status: this.outcome,
      error: this.error,
      error_type: this.errorType,
      result: this.result,
    });
    renderHistory();
    this.changed();
    if (this.result) this.captureThumbnail();
  }

  fail(err) {
    if (err instanceof ApiError && err.status === 401) askForKey(err.message);
    this.status = "COMPLETED";
    this.error = err.message;
    this.errorType = err instanceof ApiError ? (err.body?.error_type ?? `http_${err.status}`) : "network";
    history.update(this.id, { status: err.status === 404 ? "UNKNOWN" : this.outcome, error: this.error });
    renderHistory();
    this.changed();
  }

  async cancel() {
    this.cancelling = true;
    this.changed();
    try {
      await api.cancel(this.id);
    } catch (err) {
      this.cancelling = false;
      if (err instanceof ApiError && err.status === 401) askForKey(err.message);
      showJobError(`Cancel failed: ${err.message}`);
    }
  }

  async captureThumbnail() {
    const thumb = await captureThumbnail(this.result.video.url);
    if (thumb) {
      history.update(this.id, { thumb });
      renderHistory();
    }
  }

  changed() {
    if (shownJob === this) renderJob(this);
  }
}

function sameLog(a, b) {
  return a && b && a.message === b.message && a.timestamp === b.timestamp;
}

function isCancellation(errorType, error) {
  return /cancel/i.test(errorType ?? "") || /cancel/i.test(error ?? "");
}

function showJob(job) {
  shownJob = job;
  $("job-empty").hidden = true;
  $("job").hidden = false;
  const video = $("video");
  video.removeAttribute("src");
  video.load();
  $("player").hidden = true;
  renderJob(job);
}

function statusText(job) {
  switch (job.outcome) {
    case "IN_QUEUE":
      if (job.queuePosition === null || job.queuePosition === undefined) return "In queue.";
      return `In queue: position ${job.queuePosition} (${job.queuePosition} ahead).`;
    case "IN_PROGRESS":
      return job.cancelling ? "Rendering… cancellation requested." : "Rendering…";
    case "COMPLETED": {
      if (!job.result) return "Completed; fetching the result…";
      const secs = job.metrics?.inference_time;
      return typeof secs === "number" ? `Done in ${secs.toFixed(1)} s.` : "Done.";
    }
    case "CANCELLED":
      return "Cancelled.";
    default:
      return "Failed.";
  }
}

function renderJob(job) {
  $("job-status").textContent = statusText(job);
  $("job-status").dataset.status = job.outcome;
  $("job-id").textContent = job.id;
  const cancel = $("cancel");
  cancel.hidden = job.status === "COMPLETED";
  cancel.disabled = job.cancelling;
  cancel.textContent = job.cancelling ? "Cancelling…" : "Cancel";
  renderProgress(job);
  renderLog(job);
  if (job.error !== null) {
    const kind = job.outcome === "CANCELLED" ? "Cancelled" : "Failed";
    showJobError(`${kind}: ${job.error}${job.errorType ? ` (error_type: ${job.errorType})` : ""}`);
  } else {
    $("job-error").hidden = true;
  }
  if (job.result) renderResult(job);
}

function renderProgress(job) {
  const bar = $("progress");
  const label = $("progress-label");
  if (job.outcome === "COMPLETED" && job.result) {
    bar.value = 1;
    label.textContent = "complete";
  } else if (job.step) {
    bar.value = job.step.n ? job.step.i / job.step.n : 0;
    label.textContent = `step ${job.step.i}/${job.step.n}`;
  } else if (job.status === "IN_QUEUE") {
    bar.value = 0;
    label.textContent = "waiting";
  } else {
    // No step line yet: an indeterminate bar while the model loads or plans.
    if (job.status !== "COMPLETED") bar.removeAttribute("value");
    label.textContent = job.status === "COMPLETED" ? "stopped" : "starting";
  }
}

function renderLog(job) {
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  log.textContent = job.logs.map(formatLog).join("\n");
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function formatLog(entry) {
  const time = entry.timestamp ? new Date(entry.timestamp) : null;
  const clock = time && !Number.isNaN(time.getTime()) ? time.toLocaleTimeString([], { hour12: false }) : "--:--:--";
  return `${clock} ${(entry.level ?? "INFO").padEnd(5)} ${entry.message}`;
}

function showJobError(message) {
  $("job-error").textContent = message;
  $("job-error").hidden = false;
}

function renderResult(job) {
  const { video, seed, prompt } = job.result;
  const player = $("video");
  $("player").hidden = false;
  if (player.getAttribute("src") !== video.url) {
    $("meta-size").textContent = "loading…";
    $("meta-duration").textContent = "loading…";
    player.src = video.url;
  }
  $("meta-seed").textContent = seed ?? "–";
  $("meta-prompt").textContent = prompt ?? job.input.prompt;
  $("meta-file-size").textContent = formatBytes(video.file_size);
  const download = $("download");
  download.href = video.url;
  download.setAttribute("download", video.file_name || "output.mp4");
}

function formatBytes(bytes) {
  if (typeof bytes !== "number") return "–";
  const units = bytes >= 1048576 ? `${(bytes / 1048576).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
  return `${units} (${bytes.toLocaleString("en")} bytes)`;
}

function onVideoMetadata() {
  const video = $("video");
  $("meta-size").textContent = `${video.videoWidth}×${video.videoHeight}`;
  $("meta-duration").textContent = `${video.duration.toFixed(2)} s`;
}

function onVideoError() {
  const error = $("video").error;
  if (!$("video").getAttribute("src") || !error) return;
  showJobError(`The browser cannot play this video (${error.message || `media error ${error.code}`}).`);
}

// ---------------------------------------------------------------- history

function renderHistory() {
  const list = $("history");
  list.replaceChildren(...history.entries.map(historyItem));
  $("history-empty").hidden = history.entries.length > 0;
  $("clear-history").hidden = history.entries.length === 0;
}

function historyItem(entry) {
  const item = document.createElement("li");
  item.className = "history-item";
  item.dataset.id = entry.id;
  const thumb = document.createElement(entry.thumb ? "img" : "div");
  thumb.className = "thumb";
  if (entry.thumb) {
    thumb.src = entry.thumb;
    thumb.alt = "";
  }
  const body = document.createElement("div");
  body.className = "history-body";
  const title = document.createElement("p");
  title.className = "history-prompt";
  title.textContent = entry.input?.prompt || "(empty prompt)";
  const meta = document.createElement("p");
  meta.className = "muted small";
  const input = entry.input ?? {};
  const when = new Date(entry.created).toLocaleString();
  meta.textContent = `${input.resolution ?? "720p"} · ${input.aspect_ratio ?? "16:9"} · ${input.duration ?? "5"} s · ${when}`;
  const status = document.createElement("span");
  status.className = `badge status-${(entry.status ?? "UNKNOWN").toLowerCase()}`;
  status.textContent = statusLabel(entry.status);
  const actions = document.createElement("div");
  actions.className = "history-actions";
  actions.append(
    button("Reuse settings", () => reuseSettings(entry), `Reuse settings of “${shorten(input.prompt)}”`),
    button("Show", () => reopen(entry), `Show request ${entry.id}`),
  );
  body.append(title, meta, status, actions);
  item.append(thumb, body);
  return item;
}

function statusLabel(status) {
  const labels = {
    IN_QUEUE: "queued",
    IN_PROGRESS: "rendering",
    COMPLETED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
  };
  return labels[status] ?? "unknown";
}

function button(text, onClick, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "secondary small-btn";
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function shorten(text = "", max = 40) {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function reuseSettings(entry) {
  fillForm(entry.input ?? {});
  $("prompt").focus();
  $("prompt").scrollIntoView({ block: "center" });
}

function reopen(entry) {
  let job = jobs.get(entry.id);
  if (!job) {
    job = new Job(entry.id, entry.input ?? {});
    jobs.set(job.id, job);
    job.start();
  }
  showJob(job);
  $("job-title").scrollIntoView({ block: "start" });
}

/** Follow, in the background, the requests that were still running when the page was last closed. */
function resumeUnfinished() {
  for (const entry of history.entries) {
    if ((entry.status === "IN_QUEUE" || entry.status === "IN_PROGRESS") && !jobs.has(entry.id)) {
      const job = new Job(entry.id, entry.input ?? {});
      jobs.set(job.id, job);
      job.start();
    }
  }
}

// ---------------------------------------------------------------- API key

function askForKey(message) {
  $("auth-panel").hidden = false;
  if (message) $("auth-message").textContent = message;
  $("api-key").focus();
}

function onSaveKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  $("auth-message").textContent = key ? "Key saved in this browser." : "No key saved.";
}

function onForgetKey() {
  localStorage.removeItem(KEY_STORAGE);
  $("api-key").value = "";
  $("auth-message").textContent = "Key removed from this browser.";
}

async function probeAuth() {
  const key = localStorage.getItem(KEY_STORAGE);
  if (key) {
    $("api-key").value = key;
    $("auth-panel").hidden = false;
  }
  const health = await api.health();
  if (health?.auth === true) $("auth-panel").hidden = false;
}

// ---------------------------------------------------------------- "Show code"

let codeLang = "curl";

function renderCode() {
  $("code").textContent = SNIPPETS[codeLang](readInput(), window.location);
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.lang === codeLang;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected) $("code-panel").setAttribute("aria-labelledby", tab.id);
  }
  $("copy-status").textContent = "";
}

function onTabKey(event) {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const index = tabs.indexOf(event.currentTarget);
  const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = tabs[(index + moves[event.key] + tabs.length) % tabs.length];
  codeLang = next.dataset.lang;
  renderCode();
  next.focus();
}

async function onCopy() {
  const text = $("code").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("copy-status").textContent = "Copied.";
  } catch {
    // No clipboard access (e.g. plain HTTP on another host): select the text for a manual copy.
    window.getSelection().selectAllChildren($("code"));
    $("copy-status").textContent = "Press Ctrl+C (⌘C) to copy the selected code.";
  }
}

// ---------------------------------------------------------------- wiring

function init() {
  for (const field of TEXT_FIELDS) {
    $(field).addEventListener("input", () => updateCounter(field));
    updateCounter(field);
  }
  $("resolution").addEventListener("change", applyDurationRule);
  $("aspect_ratio").addEventListener("change", updateOutputHint);
  $("duration").addEventListener("change", updateOutputHint);
  $("seed-random").addEventListener("change", applySeedRandom);
  $("gen-form").addEventListener("submit", onSubmit);
  $("cancel").addEventListener("click", () => shownJob?.cancel());
  $("video").addEventListener("loadedmetadata", onVideoMetadata);
  $("video").addEventListener("error", onVideoError);
  $("clear-history").addEventListener("click", () => {
    history.clear();
    renderHistory();
  });
  $("auth-form").addEventListener("submit", onSaveKey);
  $("forget-key").addEventListener("click", onForgetKey);
  $("show-code").addEventListener("click", () => {
    renderCode();
    $("code-dialog").showModal();
  });
  $("close-code").addEventListener("click", () => $("code-dialog").close());
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => {
      codeLang = tab.dataset.lang;
      renderCode();
    });
    tab.addEventListener("keydown", onTabKey);
  }
  $("copy-code").addEventListener("click", onCopy);
  applyDurationRule();
  applySeedRandom();
  renderHistory();
  resumeUnfinished();
  probeAuth();
}

init();
