// "Show code": the same request as the form, for curl, the Python fal_client and the JS @fal-ai/client,
// pointed at this server the way the README explains.

import { APP_ID, ENDPOINT_ID } from "./api.js";

/** The server's base URL without a trailing slash, e.g. "http://127.0.0.1:8000". */
function serverBase(location) {
  return new URL(".", location.href).href.replace(/\/$/, "");
}

function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function curlSnippet(input, location) {
  const base = serverBase(location);
  const requests = `${base}/queue/${APP_ID}/requests`;
  const body = JSON.stringify(input, null, 2);
  return `# FAL_KEY="key_id:key_secret" (any value when the server has no API keys)
# 1. Submit to the queue and keep the request id
REQUEST_ID=$(curl -s -X POST "${base}/queue/${ENDPOINT_ID}" \\
  -H "Authorization: Key $FAL_KEY" \\
  -H "Content-Type: application/json" \\
  -d ${shellQuote(body)} \\
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["request_id"])')

# 2. Follow the status with logs (Server-Sent Events; ends when COMPLETED)
curl -N -H "Authorization: Key $FAL_KEY" "${requests}/$REQUEST_ID/status/stream?logs=1"

# 3. Fetch the result: {"video": {"url", ...}, "seed", ...}
curl -s -H "Authorization: Key $FAL_KEY" "${requests}/$REQUEST_ID"
`;
}

/** A Python literal for a JSON value (JSON strings are valid Python string literals). */
function pyLiteral(value, indent = "") {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "string") return JSON.stringify(value);
  const inner = `${indent}    `;
  const items = Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pyLiteral(v, inner)},`);
  return `{\n${items.join("\n")}\n${indent}}`;
}

function pythonConnection(location) {
  const url = new URL(location.href);
  const host = url.host;
  const prefix = new URL(".", url).pathname.replace(/\/$/, "");
  if (url.protocol === "https:") {
    return {
      shell: `export FAL_KEY="key_id:key_secret"  # any value (e.g. any:thing) when the server has no API keys
export FAL_RUN_HOST="${host}${prefix}"
export FAL_QUEUE_RUN_HOST="${host}${prefix}/queue"
export SSL_CERT_FILE=$PWD/data/tls/cert.pem  # from "framecast cert" (self-signed)`,
      code: "",
    };
  }
  const base = serverBase(location);
  return {
    shell: `export FAL_KEY="key_id:key_secret"  # any value (e.g. any:thing) when the server has no API keys`,
    code: `import fal_client.client

# Plain HTTP: fal_client always builds https:// URLs from FAL_RUN_HOST, so set its URL formats instead.
fal_client.client.RUN_URL_FORMAT = "${base}/"
fal_client.client.QUEUE_URL_FORMAT = "${base}/queue/"
`,
  };
}

export function pythonSnippet(input, location) {
  const { shell, code } = pythonConnection(location);
  return `# pip install fal-client
# In the shell first (fal_client reads these when it is imported):
${shell.replace(/^/gm, "# ")}
import fal_client
${code}

def on_queue_update(update):
    if isinstance(update, fal_client.InProgress):
        for log in update.logs:
            print(log["message"])


result = fal_client.subscribe(
    "${ENDPOINT_ID}",
    arguments=${pyLiteral(input, "    ")},
    with_logs=True,
    on_queue_update=on_queue_update,
)
print(result["video"]["url"], result.get("seed"))
`;
}

export function jsSnippet(input, location) {
  const body = JSON.stringify(input, null, 2).replace(/\n/g, "\n  ");
  return `// npm install @fal-ai/client
// FAL_KEY="key_id:key_secret" in the environment (any value when the server has no API keys)
import { fal } from "@fal-ai/client";

// Every call goes to this server's proxy route, with the fal URL in the x-fal-target-url header.
fal.config({
  credentials: process.env.FAL_KEY,
  proxyUrl: { url: "${serverBase(location)}/api/fal/proxy", when: "always" },
});

const result = await fal.subscribe("${ENDPOINT_ID}", {
  input: ${body},
  logs: true,
  onQueueUpdate: (update) => {
    if (update.status === "IN_PROGRESS") {
      update.logs.map((log) => log.message).forEach(console.log);
    }
  },
});
console.log(result.data.video.url, result.requestId);
`;
}

export const SNIPPETS = { curl: curlSnippet, python: pythonSnippet, js: jsSnippet };
