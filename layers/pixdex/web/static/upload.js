// Upload onto the selected dataset: files or a folder (picked or dropped), multipart
// batches of at most 4 MiB (what API Gateway and Lambda take), upload slots for bigger
// files; per file: sending % -> pending -> indexed / failed (with the reason).

import { api, el, headers, session, toast } from "./api.js";

const $ = (id) => document.getElementById(id);
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_FILES = 128;

export class Uploader {
  constructor({ onDone }) {
    this.onDone = onDone;
    this.dataset = null;
    this.rows = [];
    this.polling = 0;
    const zone = $("upload-zone");
    if (!zone) return;
    zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", async (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      this.send(await droppedFiles(e.dataTransfer));
    });
    zone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("upload-files").click(); }
    });
    for (const id of ["upload-files", "upload-folder"]) {
      $(id).addEventListener("change", (e) => {
        const files = [...e.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
        e.target.value = "";
        this.send(files);
      });
    }
  }

  target(dataset) {
    this.dataset = dataset;
    const section = $("upload");
    if (!section) return;
    section.hidden = !dataset || !session.canWrite;
    $("upload-target").textContent = dataset ? dataset.name : "";
  }

  async send(entries) {
    const dataset = this.dataset;
    if (!dataset) return;
    const images = entries.filter(({ file }) => file.type.startsWith("image/") || /\.(heic|heif|tiff?|webp|avif|jpe?g|png|gif|bmp)$/i.test(file.name));
    if (!images.length) {
      toast("No image files in what was dropped.", "error");
      return;
    }
    const rows = images.map(({ file, path }) => this.row(file, folderOf(path)));
    const small = rows.filter((r) => r.file.size <= BATCH_BYTES);
    const large = rows.filter((r) => r.file.size > BATCH_BYTES);
    for (const batch of batches(small)) await this.multipart(dataset, batch);
    for (let i = 0; i < large.length; i += BATCH_FILES) await this.slots(dataset, large.slice(i, i + BATCH_FILES));
    this.onDone(rows.filter((r) => r.li.dataset.state === "indexed").length);
    this.poll();
  }

  row(file, folder) {
    const status = el("span", { class: "up-status", "data-testid": "upload-status", text: "waiting" });
    const li = el("li", { "data-testid": "upload-item", dataset: { state: "waiting" } },
      el("span", { class: "up-name", text: folder ? `${folder.slice(1)}/${file.name}` : file.name }), status);
    $("upload-list").prepend(li);
    const row = { file, folder, li, status, id: "" };
    this.rows.push(row);
    return row;
  }

  set(row, state, text, error = "") {
    row.li.dataset.state = state;
    row.status.textContent = text;
    row.li.title = error;
    if (error) row.status.textContent = `${text}: ${error}`;
    this.summary();
  }

  summary() {
    const by = {};
    for (const row of this.rows) by[row.li.dataset.state] = (by[row.li.dataset.state] || 0) + 1;
    $("upload-summary").textContent = Object.entries(by).map(([k, v]) => `${v} ${k}`).join(" · ");
  }

  multipart(dataset, batch) {
    const form = new FormData();
    for (const row of batch) form.append("file", row.file, row.file.name);
    if (batch[0].folder) form.append("folder", batch[0].folder);
    for (const row of batch) this.set(row, "sending", "sending 0%");
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/v1/datasets/${dataset.id}/images/upload`);
      for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
      xhr.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.round((100 * e.loaded) / e.total);
        for (const row of batch) this.set(row, "sending", `sending ${pct}%`);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        if (xhr.status === 202 && body) {
          body.images.forEach((image, i) => this.accepted(batch[i], image));
        } else {
          const message = (body && body.error && body.error.message) || `HTTP ${xhr.status}`;
          for (const row of batch) this.set(row, "failed", "failed", message);
        }
        resolve();
      });
      xhr.addEventListener("error", () => {
        for (const row of batch) this.set(row, "failed", "failed", "network error");
        resolve();
      });
      xhr.send(form);
    });
  }

  async slots(dataset, rows) {
    let answer;
    try {
      answer = await api("POST", `/v1/datasets/${dataset.id}/uploads`, {
        files: rows.map((r) => ({ name: r.file.name, size: r.file.size, ...(r.folder ? { folder: r.folder } : {}) })),
      });
    } catch (err) {
      for (const row of rows) this.set(row, "failed", "failed", err.message);
      return;
    }
    await Promise.all(answer.uploads.map(async (slot, i) => {
      const row = rows[i];
      row.id = slot.image_id;
      this.set(row, "sending", "sending");
      const sent = { ...slot.headers };
      delete sent["Content-Length"];
      delete sent["content-length"];
      try {
        const response = await fetch(slot.url, { method: slot.method || "PUT", headers: sent, body: row.file });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        this.set(row, "pending", "pending");
      } catch (err) {
        this.set(row, "failed", "failed", err.message);
      }
    }));
  }

  accepted(row, image) {
    row.id = image.id;
    row.li.dataset.id = image.id;
    if (image.status === "failed") this.set(row, "failed", "failed", image.error || "");
    else this.set(row, image.status, image.status);
  }

  /** Follow pending images until each is indexed or failed. */
  poll() {
    if (this.polling) return;
    this.polling = setTimeout(async () => {
      const pending = this.rows.filter((r) => r.li.dataset.state === "pending" && r.id);
      let indexed = 0;
      for (let i = 0; i < pending.length; i += 8) {
        await Promise.all(pending.slice(i, i + 8).map(async (row) => {
          try {
            const image = await api("GET", `/v1/images/${row.id}`);
            if (image.status !== "pending") this.set(row, image.status, image.status, image.error || "");
            if (image.status === "indexed") indexed += 1;
          } catch (err) {
            if (err.status === 404) this.set(row, "failed", "failed", "deleted");
          }
        }));
      }
      this.polling = 0;
      this.onDone(indexed);
      if (this.rows.some((r) => r.li.dataset.state === "pending" && r.id)) this.poll();
    }, 1000);
  }
}

function folderOf(path) {
  const parts = path.split("/").filter(Boolean);
  parts.pop();
  return parts.length ? `/${parts.join("/")}` : "";
}

function* batches(rows) {
  // One folder per request (the multipart "folder" field applies to all its files).
  const byFolder = new Map();
  for (const row of rows) {
    if (!byFolder.has(row.folder)) byFolder.set(row.folder, []);
    byFolder.get(row.folder).push(row);
  }
  for (const group of byFolder.values()) {
    let batch = [];
    let bytes = 0;
    for (const row of group) {
      if (batch.length && (bytes + row.file.size > BATCH_BYTES || batch.length >= BATCH_FILES)) {
        yield batch;
        batch = [];
        bytes = 0;
      }
      batch.push(row);
      bytes += row.file.size;
    }
    if (batch.length) yield batch;
  }
}

/** Files of a drop, folders walked (webkitGetAsEntry), with their relative paths. */
async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...transfer.files].map((file) => ({ file, path: file.name }));
  const out = [];
  async function walk(entry, prefix) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: `${prefix}${file.name}` });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const children = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!children.length) break;
        for (const child of children) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  }
  for (const entry of entries) await walk(entry, "");
  return out;
}
