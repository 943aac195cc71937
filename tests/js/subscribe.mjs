// An application written for fal.ai, pointed at Framecast only through the client's proxyUrl.
// Usage: node subscribe.mjs BASE_URL KEY
import { fal } from "@fal-ai/client";

const [baseUrl, key] = process.argv.slice(2);
fal.config({ credentials: key, proxyUrl: { url: `${baseUrl}/api/fal/proxy`, when: "always" } });

const logs = [];
const result = await fal.subscribe("fal-ai/pixverse/v5.5/text-to-video", {
  input: { prompt: "paper boats drifting on a pond", resolution: "360p", aspect_ratio: "9:16", seed: 5 },
  logs: true,
  onQueueUpdate: (update) => {
    if (update.status === "IN_PROGRESS" || update.status === "COMPLETED") {
      for (const log of update.logs ?? []) logs.push(log.message);
    }
  },
});
const status = await fal.queue.status("fal-ai/pixverse/v5.5/text-to-video", {
  requestId: result.requestId,
  logs: true,
});
const file = await fetch(result.data.video.url);
console.log(JSON.stringify({ data: result.data, requestId: result.requestId, status, logs, fileStatus: file.status }));
