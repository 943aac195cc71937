// The input form: byte counters, the 1080p rule, the seed choice, reading and filling it, and the server's field errors.

import { $ } from "./dom.js";

const MAX_TEXT_BYTES = 2048;
export const SEED_MAX = 4294967295;
const TEXT_FIELDS = ["prompt", "negative_prompt"];
const SELECT_FIELDS = ["aspect_ratio", "resolution", "duration", "style", "thinking_type"];
const SWITCH_FIELDS = ["generate_audio_switch", "generate_multi_clip_switch"];
const FIELDS = [...TEXT_FIELDS, ...SELECT_FIELDS, ...SWITCH_FIELDS, "seed"];
const encoder = new TextEncoder();

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
export function readInput() {
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

export function fillForm(input) {
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

export function clearErrors() {
  for (const field of FIELDS) {
    const slot = $(`${field}-error`);
    slot.hidden = true;
    slot.textContent = "";
    $(field).removeAttribute("aria-invalid");
  }
  $("form-error").hidden = true;
}

export function showFormError(message) {
  $("form-error").textContent = message;
  $("form-error").hidden = false;
}

/** Put each 422 message next to its field; anything without a field goes to the form's own error line. */
export function showValidationErrors(body) {
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

/** A client-side check only where the browser would otherwise send nothing useful: an empty or non-integer seed. */
export function checkSeed() {
  if ($("seed-random").checked || /^\d+$/.test($("seed").value.trim())) return true;
  $("seed-error").textContent = `Enter a whole number from 0 to ${SEED_MAX}, or tick Random.`;
  $("seed-error").hidden = false;
  $("seed").focus();
  return false;
}

export function initForm() {
  for (const field of TEXT_FIELDS) {
    $(field).addEventListener("input", () => updateCounter(field));
    updateCounter(field);
  }
  $("resolution").addEventListener("change", applyDurationRule);
  $("aspect_ratio").addEventListener("change", updateOutputHint);
  $("duration").addEventListener("change", updateOutputHint);
  $("seed-random").addEventListener("change", applySeedRandom);
  applyDurationRule();
  applySeedRandom();
}
