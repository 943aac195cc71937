// The playground's client for the fal queue protocol as Framecast serves it.
//
// Progress comes from the SSE status stream read with fetch(), not EventSource: EventSource cannot send the
// Authorization header that a server with API keys requires. If the stream cannot be opened or ends before
// COMPLETED, the watcher falls back to polling the status route every half second. Each open stream holds one
// of the browser's six HTTP/1.1 connections to the server, so callers stream only a few requests and poll the rest.

export const ENDPOINT_ID = "fal-ai/pixverse/v5.5/text-to-video";
export const APP_ID = "fal-ai/pixverse";
const POLL_MS = 500;

/** An HTTP answer that is not a success, with the server's JSON body when it sent one. */
export class ApiError extends Error {
  constructor(status, body) {
    super(describeError(status, body));
    this.status = status;
    this.body = body;
  }
}

function describeError(status, body) {
  const detail = body && typeof body.detail === "string" ? body.detail : "";
  if (status === 401) return "The server needs a valid API key (401 Unauthorized). Enter it in the API key box.";
  if (status === 403) return "This API key may not access that request (403 Forbidden).";
  if (status === 404) return "The server does not know this request (404). It may have been deleted.";
  if (status === 422) return "The server rejected the input (422). See the messages next to the fields.";
  return `The server answered ${status}${detail ? `: ${detail}` : "."}`;
}

/** Paths are relative to the page, so the playground also works behind a path prefix. */
export function apiUrl(path) {
  return new URL(path, document.baseURI).href;
}

export function requestUrl(requestId, suffix = "") {
  return apiUrl(`queue/${APP_ID}/requests/${encodeURIComponent(requestId)}${suffix}`);
}

export class Api {
  /** @param {() => string} getKey returns the API key to send, or "" for none */
  constructor(getKey) {
    this.getKey = getKey;
  }

  headers(extra = {}) {
    const key = this.getKey();
    return key ? { Authorization: `Key ${key}`, ...extra } : { ...extra };
  }

  async call(url, init = {}) {
    let response;
    try {
      response = await fetch(url, { ...init, headers: this.headers(init.headers) });
    } catch {
      throw new Error("Cannot reach the server. Is `framecast serve` running?");
    }
    const body = await readJson(response);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  /** GET /health; an old or unreachable server simply gives null. */
  async health() {
    try {
      const response = await fetch(apiUrl("health"), { headers: this.headers() });
      return response.ok ? await readJson(response) : null;
    } catch {
      return null;
    }
  }

  submit(input) {
    return this.call(apiUrl(`queue/${ENDPOINT_ID}`), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(input),
    });
  }

  status(requestId) {
    return this.call(requestUrl(requestId, "/status?logs=1"));
  }

  result(requestId) {
    return this.call(requestUrl(requestId));
  }

  async cancel(requestId) {
    const response = await fetch(requestUrl(requestId, "/cancel"), { method: "PUT", headers: this.headers() });
    const body = await readJson(response);
    // 400 ALREADY_COMPLETED is an answer, not a failure: the watcher sees the final status anyway.
    if (!response.ok && response.status !== 400) throw new ApiError(response.status, body);
    return body;
  }

  /**
   * Follow one request until COMPLETED, calling onStatus with every status object.
   * With `stream` false it only polls. Resolves with the final status; rejects with ApiError (e.g. 401, 404).
   */
  async watch(requestId, onStatus, { stream = true } = {}) {
    let last = null;
    try {
      if (stream) last = await this.stream(requestId, onStatus);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      // A broken stream (proxy, restart): polling below picks up where it stopped.
    }
    while (!last || last.status !== "COMPLETED") {
      if (last) await sleep(POLL_MS);
      last = await this.status(requestId);
      onStatus(last);
    }
    return last;
  }

  async stream(requestId, onStatus) {
    const response = await fetch(requestUrl(requestId, "/status/stream?logs=1"), {
      headers: this.headers({ Accept: "text/event-stream" }),
    });
    if (!response.ok) throw new ApiError(response.status, await readJson(response));
    let last = null;
    for await (const data of sseData(response.body)) {
      last = JSON.parse(data);
      onStatus(last);
      if (last.status === "COMPLETED") break;
    }
    return last;
  }
}

/** Yield the `data:` payload of each Server-Sent Event; comment lines (keep-alives) are skipped. */
export async function* sseData(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) yield data;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 300) };
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
