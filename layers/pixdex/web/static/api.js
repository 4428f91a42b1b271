// The HTTP API as the page uses it: the key lives in this tab's sessionStorage only and
// travels as an Authorization header (never in a URL); thumbnails and originals are
// fetched with it and shown as blob: URLs.

const KEY = "pixdex.key";

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "";
    this.field = err.field || "";
  }
}

export const session = {
  auth: "key", // "key" | "none"
  scope: "read",
  workspace: "",
  get key() { return sessionStorage.getItem(KEY) || ""; },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
  get canWrite() { return this.scope === "write"; },
};

export function headers(extra = {}) {
  const h = { ...extra };
  const key = session.key;
  if (key && session.auth !== "none") h.Authorization = `Bearer ${key}`;
  return h;
}

export async function api(method, path, body, { signal, key } = {}) {
  const h = headers(body === undefined ? {} : { "Content-Type": "application/json" });
  if (key !== undefined) {
    if (key) h.Authorization = `Bearer ${key}`;
    else delete h.Authorization;
  }
  const response = await fetch(path, {
    method, headers: h, signal, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let payload = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

export async function whoami(key) {
  try {
    return await api("GET", "/v1/me", undefined, { key });
  } catch (err) {
    if (err.status !== 404) throw err;
    // An older server without /v1/me: a key that lists datasets is a key that works.
    await api("GET", "/v1/datasets", undefined, { key });
    return { workspace: "", scope: "write", auth: key ? "key" : "none" };
  }
}

// --- images through the key -----------------------------------------------------------

const objectUrls = new WeakMap();
let active = 0;
const queue = [];

function pump() {
  while (active < 6 && queue.length) {
    const job = queue.shift();
    if (!job.img.isConnected && !job.force) { job.resolve(); continue; }
    active += 1;
    job.run().finally(() => { active -= 1; pump(); job.resolve(); });
  }
}

/** A busy server (503) or a dropped connection is retried twice, after 0.5 s and 1.5 s;
 * any other answer is final. */
async function fetchRetrying(path) {
  for (const pause of [500, 1500, 0]) {
    try {
      const response = await fetch(path, { headers: headers(), credentials: "same-origin" });
      if (response.status < 500 || pause === 0) return response;
    } catch (err) {
      if (pause === 0) throw err;
    }
    await new Promise((done) => setTimeout(done, pause));
  }
  throw new Error("unreachable");
}

/** Load `path` into `img` (with the key when there is one), queued, at most 6 at once. */
export function loadImage(img, path, { force = false } = {}) {
  if (session.auth === "none") {
    img.src = path;
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    queue.push({
      img, force, resolve,
      run: async () => {
        try {
          const response = await fetchRetrying(path);
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          const blob = await response.blob();
          if (!img.isConnected && !force) return;
          releaseImage(img);
          const url = URL.createObjectURL(blob);
          objectUrls.set(img, url);
          img.src = url;
        } catch {
          img.classList.add("broken");
        }
      },
    });
    pump();
  });
}

/** Revoke the blob: URL an <img> holds (call when it leaves the page). */
export function releaseImage(img) {
  const url = objectUrls.get(img);
  if (url) {
    URL.revokeObjectURL(url);
    objectUrls.delete(img);
  }
}

export function releaseAll(root) {
  for (const img of root.querySelectorAll("img")) releaseImage(img);
}

/** Lazily load thumbnails as they scroll into view. */
const seen = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    seen.unobserve(entry.target);
    loadImage(entry.target, entry.target.dataset.src);
  }
}, { rootMargin: "400px" });

export function lazyImage(img, path) {
  img.dataset.src = path;
  seen.observe(img);
}

/** Blob of the original (follows a 307 to a presigned link), for "Open original". */
export async function fetchOriginal(path) {
  const response = await fetch(path, { headers: headers(), credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.blob();
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function toast(message, kind = "info") {
  const node = document.getElementById("toast");
  node.textContent = message;
  node.dataset.kind = kind;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, kind === "error" ? 8000 : 4000);
}
