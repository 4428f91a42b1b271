// The query image: dropped, pasted or chosen; scaled down in the browser; with a write key
// uploaded once as an anchor (so the page URL can name it), else sent inline. Dragging on
// it draws the box (bounding_box, fractions of the image) to search by a region.

import { api, session, toast } from "./api.js";

const $ = (id) => document.getElementById(id);
const MAX_SIDE = 1024;
const STORE = "pixdex.anchor.";

export class QueryImage {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.dataUrl = "";
    this.anchor = "";
    this.box = null;
    const drop = $("query-drop");
    for (const target of [drop, $("query-preview")]) {
      target.addEventListener("dragover", (e) => {
        if ([...e.dataTransfer.types].includes("Files")) {
          e.preventDefault();
          drop.classList.add("over");
        }
      });
      target.addEventListener("dragleave", () => drop.classList.remove("over"));
      target.addEventListener("drop", (e) => {
        e.preventDefault();
        drop.classList.remove("over");
        const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
        if (file) this.use(file);
      });
    }
    $("query-file").addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (file) this.use(file);
      e.target.value = "";
    });
    document.addEventListener("paste", (e) => {
      if (document.body.dataset.state !== "ready") return;
      const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
      if (file) {
        e.preventDefault();
        this.use(file);
      }
    });
    $("query-remove").addEventListener("click", () => {
      this.clear();
      this.emit();
    });
    $("query-clear-box").addEventListener("click", () => {
      this.setBox(null);
      this.emit();
    });
    this.drawing();
  }

  emit() {
    this.onChange({ anchor: this.anchor, box: this.box });
  }

  clear() {
    this.dataUrl = "";
    this.anchor = "";
    this.box = null;
    $("query-img").removeAttribute("src");
    $("query-preview").hidden = true;
    $("query-drop").hidden = false;
    this.setBox(null);
  }

  /** From the page URL: an anchor (its preview if this tab still has it) and a box. */
  restore(anchor, box) {
    if (!anchor) {
      if (!this.dataUrl) this.clear();
      this.setBox(this.dataUrl ? box : null);
      return;
    }
    this.anchor = anchor;
    let stored = "";
    try { stored = sessionStorage.getItem(STORE + anchor) || ""; } catch { /* private */ }
    this.dataUrl = "";
    this.show(stored);
    this.setBox(box);
  }

  show(dataUrl) {
    $("query-preview").hidden = false;
    $("query-drop").hidden = true;
    const img = $("query-img");
    if (dataUrl) img.src = dataUrl;
    else {
      img.removeAttribute("src");
      img.alt = "Query image (uploaded earlier; preview not kept in this tab)";
    }
  }

  async use(file) {
    let dataUrl;
    try {
      dataUrl = await shrink(file);
    } catch {
      toast(`${file.name} could not be read as an image`, "error");
      return;
    }
    this.dataUrl = dataUrl;
    this.anchor = "";
    this.box = null;
    this.show(dataUrl);
    this.setBox(null);
    if (session.canWrite) {
      try {
        let anchor;
        try {
          anchor = await api("POST", "/v1/anchors", { image: dataUrl });
        } catch (err) {
          if (err.status && err.status < 500) throw err;
          anchor = await api("POST", "/v1/anchors", { image: dataUrl }); // once more
        }
        this.anchor = anchor.anchor_id;
        this.dataUrl = "";
        try { sessionStorage.setItem(STORE + this.anchor, dataUrl); } catch { /* full */ }
      } catch (err) {
        // Searched inline instead: it works, only the page URL cannot name the image.
        toast(`Query image not kept for the link: ${err.message}`, "error");
      }
    }
    this.emit();
  }

  setBox(box) {
    this.box = box;
    const node = $("query-box");
    const text = $("query-box-text");
    if (!box) {
      node.hidden = true;
      text.textContent = "Searching the whole image.";
      $("query-clear-box").hidden = true;
      return;
    }
    node.hidden = false;
    node.style.left = `${box.x * 100}%`;
    node.style.top = `${box.y * 100}%`;
    node.style.width = `${box.width * 100}%`;
    node.style.height = `${box.height * 100}%`;
    text.textContent = `Region: ${Math.round(box.width * 100)}% × ${Math.round(box.height * 100)}%`
      + ` at (${Math.round(box.x * 100)}%, ${Math.round(box.y * 100)}%)`;
    $("query-clear-box").hidden = false;
  }

  drawing() {
    const stage = $("query-stage");
    let start = null;
    const at = (e) => {
      const r = $("query-img").getBoundingClientRect();
      return {
        x: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)),
        y: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)),
      };
    };
    const boxOf = (a, b) => ({
      x: Math.min(a.x, b.x), y: Math.min(a.y, b.y),
      width: Math.abs(a.x - b.x), height: Math.abs(a.y - b.y),
    });
    stage.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      start = at(e);
      stage.setPointerCapture(e.pointerId);
    });
    stage.addEventListener("pointermove", (e) => {
      if (!start) return;
      const box = boxOf(start, at(e));
      if (box.width > 0 && box.height > 0) this.setBox(box);
    });
    const finish = (e) => {
      if (!start) return;
      const box = boxOf(start, at(e));
      start = null;
      if (box.width < 0.03 || box.height < 0.03) {
        this.setBox(this.box && this.box.width >= 0.03 ? this.box : null);
        return;
      }
      this.setBox(round(box));
      this.emit();
    };
    stage.addEventListener("pointerup", finish);
    stage.addEventListener("pointercancel", () => { start = null; });
  }
}

function round(box) {
  const r = (v) => Math.round(v * 10000) / 10000;
  const x = r(box.x);
  const y = r(box.y);
  return { x, y, width: Math.min(r(box.width), 1 - x), height: Math.min(r(box.height), 1 - y) };
}

/** The file as a JPEG data: URI at most MAX_SIDE pixels on a side. */
async function shrink(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvas.toDataURL("image/jpeg", 0.9);
}
