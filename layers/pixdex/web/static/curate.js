// Curating a dataset: near-duplicate clusters (with the suggested keeper), leakage across
// splits, outliers and label doubts, each a tab of one dialog, read from the API
// (/v1/datasets/{id}/duplicates | leakage | outliers | label-doubts).

import { api, el, lazyImage, releaseAll } from "./api.js";

const $ = (id) => document.getElementById(id);
const TABS = ["duplicates", "leakage", "outliers", "doubts"];

function thumb(id, label) {
  const img = el("img", { alt: label, width: 96, height: 96, loading: "lazy" });
  lazyImage(img, `/v1/images/${id}/thumbnail?size=128`);
  return img;
}

function figure(id, name, note, extra = {}) {
  return el("figure", { class: "cur-item", "data-testid": "curate-item", dataset: { id }, ...extra },
    thumb(id, name), el("figcaption", {}, el("span", { class: "cur-name", text: name }), el("br"),
      el("span", { class: "muted", text: note })));
}

export class Curate {
  constructor() {
    this.dataset = null;
    this.tab = "duplicates";
    const dialog = $("curate");
    $("curate-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => releaseAll($("curate-body")));
    for (const tab of TABS) {
      $(`curate-tab-${tab}`).addEventListener("click", () => this.show(tab));
    }
    $("curate-level").addEventListener("change", () => this.show(this.tab));
  }

  open(dataset) {
    this.dataset = dataset;
    $("curate-title").textContent = `Curate ${dataset.name}`;
    if (!$("curate").open) $("curate").showModal();
    this.show("duplicates");
  }

  async show(tab) {
    this.tab = tab;
    for (const name of TABS) {
      $(`curate-tab-${name}`).setAttribute("aria-selected", String(name === tab));
    }
    $("curate-level-row").hidden = !(tab === "duplicates" || tab === "leakage");
    const body = $("curate-body");
    releaseAll(body);
    body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    body.dataset.state = "loading";
    const base = `/v1/datasets/${this.dataset.id}`;
    const level = $("curate-level").value;
    try {
      if (tab === "duplicates") this.duplicates(await api("GET", `${base}/duplicates?level=${level}&limit=100`));
      else if (tab === "leakage") this.leakage(await api("GET", `${base}/leakage?level=${level}`));
      else if (tab === "outliers") this.outliers(await api("GET", `${base}/outliers?limit=60`));
      else this.doubts(await api("GET", `${base}/label-doubts`));
      body.dataset.state = "ready";
    } catch (err) {
      body.replaceChildren(el("p", { class: "error", role: "alert", text: err.message }));
      body.dataset.state = "error";
    }
  }

  duplicates(page) {
    const body = $("curate-body");
    body.replaceChildren(el("p", { class: "muted", "data-testid": "curate-summary",
      text: `${page.total_clusters} cluster(s) at level ${page.level} (cosine ≥ ${page.threshold})` }));
    for (const cluster of page.clusters) {
      const row = el("div", { class: "cur-row", "data-testid": "curate-cluster" });
      for (const m of cluster.members) {
        const keep = m.id === cluster.keep;
        const note = `${keep ? "keep · " : ""}${m.split ? `${m.split} · ` : ""}${m.score.toFixed(3)}`;
        row.append(figure(m.id, m.name, note, { class: keep ? "cur-item keep" : "cur-item" }));
      }
      body.append(el("h4", { text: `${cluster.size} images` }), row);
    }
  }

  leakage(found) {
    const body = $("curate-body");
    const counts = Object.entries(found.counts).map(([pair, n]) => `${pair} ${n}`).join(", ");
    body.replaceChildren(el("p", { class: "muted", "data-testid": "curate-summary",
      text: found.note || `${found.pairs.length} leaking pair(s): ${counts || "none"}` }));
    for (const pair of found.pairs) {
      body.append(el("div", { class: "cur-row", "data-testid": "curate-leak" },
        figure(pair.a.id, pair.a.name, pair.a.split),
        el("span", { class: "cur-score", text: `~ ${pair.score.toFixed(3)}` }),
        figure(pair.b.id, pair.b.name, pair.b.split)));
    }
  }

  outliers(page) {
    const body = $("curate-body");
    const row = el("div", { class: "cur-row wrap" });
    for (const o of page.outliers) row.append(figure(o.id, o.name, `distance ${o.score.toFixed(3)}`));
    body.replaceChildren(el("p", { class: "muted", "data-testid": "curate-summary",
      text: `${page.total} image(s), most unlike the rest first` }), row);
  }

  doubts(found) {
    const body = $("curate-body");
    body.replaceChildren(el("p", { class: "muted", "data-testid": "curate-summary",
      text: `${found.neighbour_doubts.length} neighbour doubt(s), ${found.tag_contradictions.length} tag contradiction(s)` }));
    const votes = el("div", { class: "cur-row wrap" });
    for (const d of found.neighbour_doubts) {
      votes.append(figure(d.id, d.name, `${d.classes.join(", ")} → neighbours say ${d.suggested}`));
    }
    const tags = el("div", { class: "cur-row wrap" });
    for (const c of found.tag_contradictions) {
      const named = Object.keys(c.tags).join(", ");
      tags.append(figure(c.id, c.name, `${c.classes.join(", ")} vs tags ${named}`));
    }
    body.append(el("h4", { text: "Neighbours disagree" }), votes,
      el("h4", { text: "Auto-tags disagree" }), tags);
  }
}
