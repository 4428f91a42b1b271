// The datasets panel: counts per status, a live progress bar while indexing (polled),
// failed images with their reasons, and a form to create one (write keys).

import { api, el, session, toast } from "./api.js";

const $ = (id) => document.getElementById(id);

export class Datasets {
  constructor({ onSelect, onChanged, onCurate }) {
    this.onSelect = onSelect;
    this.onCurate = onCurate;
    this.onChanged = onChanged;
    this.items = [];
    this.selected = "";
    this.timer = 0;
    this.failedFor = "";
    $("refresh-datasets").addEventListener("click", () => this.refresh());
    const form = $("new-dataset");
    if (form) {
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const name = $("new-dataset-name").value.trim();
        if (!name) return;
        try {
          await api("POST", "/v1/datasets", { name });
          $("new-dataset-name").value = "";
          await this.refresh();
          this.onSelect(name);
        } catch (err) {
          toast(err.message, "error");
        }
      });
    }
  }

  current() {
    return this.items.find((d) => d.name === this.selected || d.id === this.selected) || null;
  }

  select(name) {
    this.selected = name;
    const options = $("dataset");
    if (name && ![...options.options].some((o) => o.value === name)) {
      options.append(el("option", { value: name, text: name }));
    }
    options.value = name;
    for (const li of $("datasets").children) {
      li.classList.toggle("selected", li.dataset.name === name);
      li.querySelector(".ds-name")?.setAttribute("aria-pressed", String(li.dataset.name === name));
    }
    if (this.failedFor && this.failedFor !== (this.current() || {}).id) $("failed").hidden = true;
    this.onChanged();
  }

  /** Poll again soon while something is indexing (or the uploader asks). */
  watch(ms = 1500) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), ms);
  }

  async refresh() {
    let answer;
    try {
      answer = await api("GET", "/v1/datasets");
    } catch (err) {
      toast(`Datasets: ${err.message}`, "error");
      return;
    }
    this.items = answer.datasets;
    this.render();
    if (this.items.some((d) => d.status === "INDEXING")) this.watch();
    if (this.failedFor) {
      const ds = this.items.find((d) => d.id === this.failedFor);
      if (ds && !$("failed").hidden) this.showFailed(ds, false);
    }
  }

  render() {
    const list = $("datasets");
    list.replaceChildren();
    const select = $("dataset");
    const keep = select.value || this.selected;
    select.replaceChildren(el("option", { value: "", text: "All datasets" }));
    if (!this.items.length) {
      list.append(el("li", { class: "muted", text: session.canWrite
        ? "No datasets yet: create one below, then drop images on it."
        : "No datasets in this workspace yet." }));
    }
    for (const ds of this.items) {
      select.append(el("option", { value: ds.name, text: ds.name }));
      const c = ds.images;
      const done = c.indexed + c.failed;
      const li = el("li", {
        class: "dataset", "data-testid": "dataset", dataset: { name: ds.name, id: ds.id, status: ds.status },
      });
      li.append(el("button", {
        type: "button", class: "ds-name link", text: ds.name, "aria-pressed": String(ds.name === keep),
        onclick: () => this.onSelect(ds.name === this.selected ? "" : ds.name),
      }));
      const counts = el("p", { class: "ds-counts", "data-testid": "dataset-counts" },
        el("span", { text: `${c.total} images` }), " · ",
        el("span", { text: `${c.indexed} indexed` }));
      if (c.pending) counts.append(" · ", el("span", { class: "pending", text: `${c.pending} pending` }));
      if (c.failed) {
        counts.append(" · ", el("button", {
          type: "button", class: "link failed-count", "data-testid": "dataset-failed",
          text: `${c.failed} failed`, onclick: () => this.showFailed(ds, true),
        }));
      }
      li.append(counts);
      if (this.onCurate && c.indexed) {
        counts.append(" · ", el("button", {
          type: "button", class: "link", "data-testid": "dataset-curate", text: "curate",
          "aria-label": `Curate ${ds.name}: duplicates, leakage, outliers, label doubts`,
          onclick: () => this.onCurate(ds),
        }));
      }
      if (ds.status === "INDEXING") {
        li.append(el("progress", {
          max: Math.max(1, c.total), value: done, "data-testid": "dataset-progress",
          "aria-label": `${ds.name}: ${done} of ${c.total} processed`,
        }));
      }
      li.classList.toggle("selected", ds.name === keep);
      list.append(li);
    }
    if (keep) this.select(keep);
  }

  async showFailed(ds, focus) {
    this.failedFor = ds.id;
    const section = $("failed");
    const list = $("failed-list");
    section.hidden = false;
    $("failed-title").textContent = `Failed in ${ds.name}`;
    let answer;
    try {
      answer = await api("GET", `/v1/datasets/${ds.id}/images?status=failed&limit=100`);
    } catch (err) {
      list.replaceChildren(el("li", { text: err.message }));
      return;
    }
    list.replaceChildren();
    for (const image of answer.images) {
      list.append(el("li", { "data-testid": "failed-image" },
        el("strong", { text: image.name }), el("br"),
        el("span", { class: "muted", text: image.error || "unknown reason" })));
    }
    if (answer.total > answer.images.length) {
      list.append(el("li", { class: "muted", text: `… and ${answer.total - answer.images.length} more` }));
    }
    if (!answer.images.length) list.append(el("li", { class: "muted", text: "None." }));
    if (focus) section.scrollIntoView({ block: "nearest" });
  }
}
