// The playground page: the job being watched, the history and the API key; the form and the code dialog live in
// form.js and code-dialog.js.

import { Api, ApiError } from "./api.js";
import { initCodeDialog } from "./code-dialog.js";
import { $ } from "./dom.js";
import { checkSeed, clearErrors, fillForm, initForm, readInput, showFormError, showValidationErrors } from "./form.js";
import { History, captureThumbnail } from "./history.js";

const KEY_STORAGE = "framecast.apiKey";
const STEP_RE = /step\s+(\d+)\s*\/\s*(\d+)/i;
const MAX_STREAMS = 3; // of the browser's six connections per server; further requests are polled

const api = new Api(() => localStorage.getItem(KEY_STORAGE) || "");
const history = new History();
const jobs = new Map();
let shownJob = null;
let openStreams = 0;

async function onSubmit(event) {
  event.preventDefault();
  clearErrors();
  if (!checkSeed()) return;
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
    // On a phone the result panel sits below the form: bring it into view.
    if ($("job").getBoundingClientRect().top > window.innerHeight) $("job-title").scrollIntoView({ block: "start" });
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

// ---------------------------------------------------------------- wiring

function init() {
  initForm();
  initCodeDialog();
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
  renderHistory();
  resumeUnfinished();
  probeAuth();
}

init();
