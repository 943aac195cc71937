// This browser's past requests, kept in localStorage: id, input, outcome and a small first-frame thumbnail.

const STORAGE_KEY = "framecast.history.v1";
const MAX_ENTRIES = 30;
const THUMB_WIDTH = 160;

export class History {
  constructor(storage = window.localStorage) {
    this.storage = storage;
    this.entries = this.load();
  }

  load() {
    try {
      const entries = JSON.parse(this.storage.getItem(STORAGE_KEY) || "[]");
      return Array.isArray(entries) ? entries.filter((e) => e && typeof e.id === "string") : [];
    } catch {
      return [];
    }
  }

  save() {
    // Thumbnails are the bulk: when the quota is hit, drop the oldest ones rather than the records.
    for (;;) {
      try {
        this.storage.setItem(STORAGE_KEY, JSON.stringify(this.entries));
        return;
      } catch {
        const withThumb = [...this.entries].reverse().find((e) => e.thumb);
        if (!withThumb) return;
        delete withThumb.thumb;
      }
    }
  }

  get(id) {
    return this.entries.find((e) => e.id === id);
  }

  add(entry) {
    this.entries = [entry, ...this.entries.filter((e) => e.id !== entry.id)].slice(0, MAX_ENTRIES);
    this.save();
  }

  update(id, changes) {
    const entry = this.get(id);
    if (!entry) return;
    Object.assign(entry, changes);
    this.save();
  }

  clear() {
    this.entries = [];
    this.save();
  }
}

/** A small JPEG data URL of the frame the video element shows, or null (e.g. a cross-origin file taints the canvas). */
function thumbnailFrom(video) {
  if (!video.videoWidth || !video.videoHeight) return null;
  const canvas = document.createElement("canvas");
  canvas.width = THUMB_WIDTH;
  canvas.height = Math.max(1, Math.round((THUMB_WIDTH * video.videoHeight) / video.videoWidth));
  try {
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", 0.7);
  } catch {
    return null;
  }
}

/**
 * Load the video in an off-screen element just long enough to grab its first frame. Chromium hands a canvas a
 * blank frame from an on-page <video> until it has painted it, so the visible player is not used for this.
 */
export function captureThumbnail(url) {
  return new Promise((resolve) => {
    const video = document.createElement("video");
    const done = (thumb) => {
      video.removeAttribute("src");
      video.load();
      resolve(thumb);
    };
    video.muted = true;
    video.preload = "auto";
    video.addEventListener("loadeddata", () => done(thumbnailFrom(video)), { once: true });
    video.addEventListener("error", () => done(null), { once: true });
    video.src = url;
  });
}
