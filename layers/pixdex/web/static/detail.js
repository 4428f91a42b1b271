// The detail view: large image, metadata, auto-tags with scores, user tags (editable with
// a write key) and nearest neighbours (like_image). Arrows: previous / next; Esc closes.

import { api, el, fetchOriginal, loadImage, releaseAll, releaseImage, session, toast } from "./api.js";

const $ = (id) => document.getElementById(id);

export class Detail {
  constructor({ onLike, onFilter }) {
    this.onLike = onLike;
    this.onFilter = onFilter;
    this.list = [];
    this.index = -1;
    this.image = null;
    this.serial = 0;
    const dialog = $("detail");
    $("detail-close").addEventListener("click", () => dialog.close());
    $("detail-prev").addEventListener("click", () => this.step(-1));
    $("detail-next").addEventListener("click", () => this.step(1));
    dialog.addEventListener("close", () => this.closed());
    dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
    // On the document: a button that becomes disabled (first / last) drops the focus.
    document.addEventListener("keydown", (e) => {
      if (!dialog.open || e.target.closest?.("input, textarea, select")) return;
      if (e.key === "ArrowRight") { e.preventDefault(); this.step(1); }
      if (e.key === "ArrowLeft") { e.preventDefault(); this.step(-1); }
    });
    $("detail-like").addEventListener("click", () => {
      const id = this.image && this.image.id;
      dialog.close();
      if (id) this.onLike(id);
    });
    $("detail-original").addEventListener("click", () => this.original());
    const form = $("tag-form");
    if (form) {
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const tag = $("tag-input").value.trim();
        if (tag) this.patch({ add_tags: [tag] }).then(() => { $("tag-input").value = ""; });
      });
    }
  }

  /** Open result `index` of `list` (the results grid, or the neighbours). */
  open(list, index) {
    this.list = list;
    this.index = index;
    const dialog = $("detail");
    if (!dialog.open) {
      this.returnFocus = document.activeElement;
      dialog.showModal();
      $("detail-close").focus();
    }
    this.show(list[index].id);
  }

  step(delta) {
    const next = this.index + delta;
    if (next < 0 || next >= this.list.length) return;
    this.index = next;
    this.show(this.list[next].id);
  }

  closed() {
    releaseAll($("detail"));
    $("neighbours").replaceChildren();
    this.image = null;
    const button = document.querySelector(`.result[data-id="${this.list[this.index]?.id}"]`);
    (button || this.returnFocus)?.focus?.();
  }

  async show(id) {
    const serial = ++this.serial;
    $("detail-prev").disabled = this.index <= 0;
    $("detail-next").disabled = this.index >= this.list.length - 1;
    const hit = this.list[this.index] || {};
    $("detail-title").textContent = hit.name || id;
    const img = $("detail-img");
    releaseImage(img);
    img.removeAttribute("src");
    img.alt = hit.name || "image";
    $("detail").dataset.id = id;
    $("detail").dataset.state = "loading";
    loadImage(img, `/v1/images/${id}/thumbnail?size=512`, { force: true });
    let image;
    try {
      image = await api("GET", `/v1/images/${id}`);
    } catch (err) {
      if (serial === this.serial) toast(`Could not open the image: ${err.message}`, "error");
      return;
    }
    if (serial !== this.serial) return;
    this.image = image;
    $("detail-title").textContent = image.name;
    img.alt = image.name;
    this.renderMeta(image);
    this.renderTags(image);
    this.renderAuto(image);
    this.neighbours(image, serial);
  }

  renderMeta(image) {
    const rows = [
      ["Dataset", image.dataset], ["Folder", image.folder], ["Status", image.status],
      ["Error", image.error],
      ["Size", image.width && `${image.width} × ${image.height} ${image.format || ""}`],
      ["Bytes", image.byte_size && image.byte_size.toLocaleString()],
      ["Added", image.created && new Date(image.created).toLocaleString()],
      ["Split", image.split], ["Batch", image.batch_id], ["Annotation job", image.annotation_job_id],
      ["Classes", image.annotations && Object.entries(image.annotations).map(([k, v]) => `${k} ×${v}`).join(", ")],
      ["Metadata", image.metadata && Object.keys(image.metadata).length ? JSON.stringify(image.metadata, null, 1) : ""],
      ["Id", image.id],
    ];
    const dl = $("detail-meta");
    dl.replaceChildren();
    for (const [label, value] of rows) {
      if (!value) continue;
      dl.append(el("dt", { text: label }), el("dd", { text: value }));
    }
  }

  renderTags(image) {
    const list = $("detail-tags");
    list.replaceChildren();
    for (const tag of image.tags || []) {
      const chip = el("li", { class: "chip", "data-testid": "user-tag" },
        el("button", { type: "button", class: "link", text: tag, title: "Filter by this tag",
          onclick: () => { $("detail").close(); this.onFilter("tags", tag); } }));
      if (session.canWrite) {
        chip.append(el("button", {
          type: "button", text: "×", "aria-label": `Remove tag ${tag}`,
          onclick: () => this.patch({ remove_tags: [tag] }),
        }));
      }
      list.append(chip);
    }
    if (!(image.tags || []).length) list.append(el("li", { class: "muted", text: "none" }));
  }

  renderAuto(image) {
    const root = $("detail-auto");
    root.replaceChildren();
    const auto = image.auto_tags || {};
    for (const kind of ["objects", "scenes", "attributes"]) {
      const entries = Object.entries(auto[kind] || {}).sort((a, b) => b[1] - a[1]);
      if (!entries.length) continue;
      const ul = el("ul", { class: "auto-tags" });
      for (const [name, score] of entries) {
        ul.append(el("li", {},
          el("button", { type: "button", class: "link", text: name, title: `Filter by ${kind}: ${name}`,
            onclick: () => { $("detail").close(); this.onFilter(kind, name); } }),
          el("meter", { min: 0, max: 1, value: score, "aria-label": `${name} score` }),
          el("span", { class: "score", text: score.toFixed(2) })));
      }
      root.append(el("h4", { text: kind }), ul);
    }
    if (!root.childElementCount) root.append(el("p", { class: "muted", text: "none" }));
  }

  async neighbours(image, serial) {
    const grid = $("neighbours");
    releaseAll(grid);
    grid.replaceChildren(el("li", { class: "muted", text: "Finding neighbours…" }));
    if (image.status !== "indexed") {
      grid.replaceChildren(el("li", { class: "muted", text: "Not indexed." }));
      return;
    }
    let answer;
    try {
      answer = await api("POST", "/v1/search", {
        like_image: image.id, in_dataset: image.dataset_id, limit: 12, fields: ["name"],
      });
    } catch (err) {
      if (serial === this.serial) grid.replaceChildren(el("li", { class: "muted", text: err.message }));
      return;
    }
    if (serial !== this.serial) return;
    releaseAll(grid);
    grid.replaceChildren();
    const list = answer.results;
    list.forEach((hit, i) => {
      const name = hit.name || hit.id;
      const img = el("img", { alt: name, width: 128, height: 128 });
      const button = el("button", {
        type: "button", class: "result", "data-testid": "neighbour", dataset: { id: hit.id },
        onclick: () => this.open(list, i),
      }, img, el("span", { class: "caption" },
        el("span", { class: "name", text: name }),
        el("span", { class: "score", text: hit.score.toFixed(3) })));
      grid.append(el("li", {}, button));
      loadImage(img, `/v1/images/${hit.id}/thumbnail?size=256`);
    });
    if (!list.length) grid.append(el("li", { class: "muted", text: "No neighbours." }));
    $("detail").dataset.state = "ready";
  }

  async patch(body) {
    if (!this.image) return;
    try {
      const image = await api("PATCH", `/v1/images/${this.image.id}`, body);
      this.image = image;
      this.renderTags(image);
      const hit = this.list[this.index];
      if (hit && hit.id === image.id) hit.tags = image.tags;
    } catch (err) {
      toast(`Could not save the tags: ${err.message}`, "error");
    }
  }

  async original() {
    if (!this.image) return;
    const win = window.open("", "_blank");
    try {
      const blob = await fetchOriginal(`/v1/images/${this.image.id}/file`);
      const url = URL.createObjectURL(blob);
      if (win) win.location = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      if (win) win.close();
      toast(`Could not load the original: ${err.message}`, "error");
    }
  }
}
