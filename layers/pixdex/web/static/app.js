// pixdex web app: sign-in, datasets, search (prompt, query image + box, more like this,
// facets, threshold, grouping), results grid with infinite scroll. The query lives in the
// page URL (never the key). All user text is set with textContent.

import { api, ApiError, el, lazyImage, releaseAll, toast } from "./api.js";
import { FACETS, facetFor, renderFacets, tallyFacets } from "./facets.js";
import { readUrl, state, writeUrl as writeStateUrl } from "./url.js";
import { QueryImage } from "./query.js";
import { Detail } from "./detail.js";
import { Datasets } from "./datasets.js";
import { Curate } from "./curate.js";
import { Uploader } from "./upload.js";
import { signIn } from "./signin.js";

const $ = (id) => document.getElementById(id);
// The grid shows names and scores; the rest is for counting facets on the page when the
// server does not count them (the detail view reads the image itself).
const FIELDS = ["name"];
const TALLY_FIELDS = ["name", "folder", "tags", "auto_tags", "annotations", "split", "batch_id",
  "annotation_job_id"];

let facetsSupported = true;
let generation = 0;
let results = [];
let total = 0;
let exhausted = false;
let loading = false;
let lastFacets = null;
const timings = [];
window.pixdexTimings = timings;

function writeUrl(push) {
  writeStateUrl(push, Boolean(query.dataUrl));
}

function syncControls() {
  $("prompt").value = state.q;
  $("negative-prompt").value = state.neg;
  $("threshold").value = String(state.t);
  $("threshold-value").textContent = state.t > 0 ? state.t.toFixed(2) : "off";
  $("group").value = state.g;
  datasets.select(state.ds);
  $("like-chip").hidden = !state.like;
  $("like-name").textContent = likeName(state.like);
  renderActiveFilters();
}

function likeName(id) {
  const hit = results.find((r) => r.id === id);
  return hit ? hit.name || id : id.slice(0, 8);
}

// --- search ----------------------------------------------------------------------------

function searchBody(offset) {
  const body = { offset, limit: state.limit, fields: facetsSupported ? FIELDS : TALLY_FIELDS };
  if (state.ds) body.in_dataset = state.ds;
  if (state.q) {
    body.prompt = state.q;
    if (state.neg) body.negative_prompt = state.neg;
  }
  if (state.like) body.like_image = state.like;
  if (state.anchor) body.anchor_id = state.anchor;
  else if (query.dataUrl) body.image = query.dataUrl;
  if (state.box && (body.anchor_id || body.image)) body.bounding_box = state.box;
  if (state.t > 0) body.threshold = state.t;
  if (state.g !== "") body.group = Number(state.g);
  for (const facet of FACETS) {
    const values = state.filters[facet.key];
    if (values && values.length) body[facet.field] = facet.multi ? values : values[0];
  }
  if (offset === 0 && facetsSupported) body.facets = true;
  return body;
}

async function runSearch(offset = 0) {
  const mine = offset === 0 ? ++generation : generation;
  if (offset === 0) {
    releaseAll($("results"));
    $("results").replaceChildren();
    $("warnings").replaceChildren();
    results = [];
    total = 0;
    exhausted = false;
  }
  loading = true;
  setStatus(offset === 0 ? "Searching…" : "Loading more…", "loading");
  let answer;
  try {
    answer = await api("POST", "/v1/search", searchBody(offset));
  } catch (err) {
    if (err instanceof ApiError && err.status === 422 && err.field === "facets" && facetsSupported) {
      facetsSupported = false;
      loading = false;
      return runSearch(offset);
    }
    if (mine !== generation) return;
    loading = false;
    exhausted = true;
    if (err.status === 401) return signOut("Your key is no longer accepted.");
    setStatus(err.message || "Search failed", "error");
    renderFacetsFor(null);
    return;
  }
  if (mine !== generation) return;
  if (offset === 0 && facetsSupported && !answer.facets) {
    // A server that ignores "facets": ask again for the fields to count them on the page.
    facetsSupported = false;
    loading = false;
    return runSearch(0);
  }
  const received = performance.now();
  loading = false;
  total = answer.total;
  const start = results.length;
  results.push(...answer.results);
  // An approximate (HNSW) answer's total is an estimate: only a short page ends the list.
  exhausted = answer.results.length < state.limit
    || (answer.exact !== false && results.length >= total);
  paint(answer, start);
  if (offset === 0) renderFacetsFor(answer.facets || null);
  else if (!lastFacets) renderFacetsFor(null);
  // Measured: from the answer's JSON to the frame that shows it (the task after the next
  // animation frame runs once that frame is painted); `dom` is the time spent building it.
  const built = performance.now() - received;
  requestAnimationFrame(() => setTimeout(() => {
    const ms = performance.now() - received;
    timings.push({ offset, count: answer.results.length, ms, dom: built });
    $("results").dataset.paintMs = ms.toFixed(1);
  }, 0));
  const shown = results.length;
  const approx = answer.exact === false ? "about " : "";
  setStatus(shown === 0 ? "No results." : `${shown} of ${approx}${total} shown`, "done");
  if (!exhausted) requestAnimationFrame(checkMore);
}

function setStatus(text, kind) {
  const node = $("status");
  node.textContent = text;
  node.dataset.state = kind;
}

function paint(answer, start) {
  const warnings = $("warnings");
  if (start === 0) {
    for (const warning of answer.warnings || []) warnings.append(el("li", { text: warning }));
  }
  const clusters = new Map();
  for (const cluster of answer.clusters || []) clusters.set(cluster.id, cluster);
  const fragment = document.createDocumentFragment();
  answer.results.forEach((hit, i) => {
    fragment.append(resultItem(hit, start + i, clusters));
  });
  $("results").append(fragment);
}

function resultItem(hit, index, clusters) {
  const name = hit.name || hit.id;
  const img = el("img", { alt: name, width: 256, height: 256, decoding: "async" });
  lazyImage(img, `/v1/images/${hit.id}/thumbnail?size=256`);
  const button = el("button", {
    type: "button", class: "result", "data-testid": "result",
    dataset: { id: hit.id, index: String(index) },
    "aria-label": `${name}, score ${hit.score.toFixed(3)}`,
  }, img,
  el("span", { class: "caption" },
    el("span", { class: "name", text: name, "data-testid": "result-name" }),
    el("span", { class: "score", text: hit.score.toFixed(3), "data-testid": "result-score" })));
  const li = el("li", {}, button, el("button", {
    type: "button", class: "like-btn", "data-testid": "result-like", text: "≈ similar",
    "aria-label": `More like ${name}`, title: "More like this",
    onclick: () => setLike(hit.id),
  }));
  if (hit.cluster) {
    const cluster = clusters.get(hit.cluster);
    if (cluster && cluster.id === hit.id && cluster.size > 1) {
      li.append(el("button", {
        type: "button", class: "badge", "data-testid": "cluster-badge",
        "aria-label": `Show ${cluster.size - 1} near-duplicates`,
        text: `+${cluster.size - 1}`,
        onclick: () => {
          for (const member of $("results").querySelectorAll(`li[data-cluster="${hit.cluster}"]`)) {
            member.classList.toggle("expanded");
          }
        },
      }));
    } else if (cluster && cluster.id !== hit.id) {
      li.classList.add("member");
      li.dataset.cluster = hit.cluster;
    }
  }
  return li;
}

function checkMore() {
  if (loading || exhausted) return;
  const sentinel = $("more").getBoundingClientRect();
  if (sentinel.top < window.innerHeight + 600) runSearch(results.length);
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) checkMore();
}, { rootMargin: "600px" }).observe($("more"));

// --- facets ----------------------------------------------------------------------------

function renderFacetsFor(facets) {
  lastFacets = facets;
  const counts = facets || tallyFacets(results);
  $("facets-note").textContent = facets ? ""
    : results.length ? "Counts over the results shown." : "";
  renderFacets($("facets"), counts, state.filters, toggleFilter);
}

function toggleFilter(key, value, on) {
  const facet = facetFor(key);
  const current = state.filters[key] || [];
  let next;
  if (on) next = facet.multi ? [...new Set([...current, value])] : [value];
  else next = current.filter((v) => v !== value);
  if (next.length) state.filters[key] = next;
  else delete state.filters[key];
  newSearch();
}

function renderActiveFilters() {
  const box = $("active-filters");
  box.replaceChildren();
  for (const facet of FACETS) {
    for (const value of state.filters[facet.key] || []) {
      box.append(el("span", { class: "chip", "data-testid": "active-filter" },
        el("span", { text: `${facet.label}: ${value}` }),
        el("button", {
          type: "button", "aria-label": `Remove filter ${facet.label} ${value}`, text: "×",
          onclick: () => toggleFilter(facet.key, value, false),
        })));
    }
  }
}

export function addFilter(key, value) {
  toggleFilter(key, value, true);
}

// --- wiring ----------------------------------------------------------------------------

function newSearch(push = true) {
  writeUrl(push);
  syncControls();
  runSearch(0);
}

const query = new QueryImage({
  onChange: ({ anchor, box }) => {
    state.anchor = anchor || "";
    state.box = box;
    newSearch();
  },
});

const detail = new Detail({
  onLike: (id) => setLike(id),
  onFilter: (key, value) => addFilter(key, value),
  neighbourOf: () => results,
});

const curate = new Curate();
const datasets = new Datasets({
  onSelect: (name) => {
    state.ds = name;
    newSearch();
  },
  onChanged: () => uploader.target(datasets.current()),
  onCurate: (ds) => curate.open(ds),
});

const uploader = new Uploader({
  onDone: (indexed) => {
    datasets.refresh();
    // New images in the dataset on screen: show them while the user is on the first page.
    const here = datasets.current();
    if (indexed && here && uploader.dataset && here.id === uploader.dataset.id
        && results.length < state.limit && !loading) runSearch(0);
  },
});

function setLike(id) {
  // The image is the query now: a prompt or another query image would compete with it
  // (and the offline model cannot blend them).
  state.like = id;
  state.q = "";
  state.neg = "";
  state.anchor = "";
  state.box = null;
  query.clear();
  $("like-name").textContent = likeName(id);
  newSearch();
  $("results").scrollIntoView({ block: "start" });
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.q = $("prompt").value.trim();
  state.neg = $("negative-prompt").value.trim();
  newSearch();
});
$("threshold").addEventListener("input", () => {
  const value = Number($("threshold").value);
  $("threshold-value").textContent = value > 0 ? value.toFixed(2) : "off";
});
$("threshold").addEventListener("change", () => {
  state.t = Number($("threshold").value);
  newSearch();
});
$("group").addEventListener("change", () => {
  state.g = $("group").value;
  newSearch();
});
$("dataset").addEventListener("change", () => {
  state.ds = $("dataset").value;
  newSearch();
});
$("like-remove").addEventListener("click", () => {
  state.like = "";
  newSearch();
});
window.addEventListener("popstate", () => {
  readUrl();
  query.restore(state.anchor, state.box);
  syncControls();
  runSearch(0);
});

// Keyboard: arrows move between results, Enter opens (a button), Esc closes the detail.
$("results").addEventListener("keydown", (event) => {
  const current = event.target.closest(".result");
  if (!current) return;
  const buttons = [...$("results").querySelectorAll("li:not(.member) > .result, li.expanded > .result")];
  const i = buttons.indexOf(current);
  let next = -1;
  const columns = columnsOf(buttons);
  if (event.key === "ArrowRight") next = i + 1;
  else if (event.key === "ArrowLeft") next = i - 1;
  else if (event.key === "ArrowDown") next = i + columns;
  else if (event.key === "ArrowUp") next = i - columns;
  else if (event.key === "Home") next = 0;
  else if (event.key === "End") next = buttons.length - 1;
  else return;
  event.preventDefault();
  if (next >= 0 && next < buttons.length) {
    buttons[next].focus();
    buttons[next].scrollIntoView({ block: "nearest" });
  }
  if (next >= buttons.length - columns) checkMore();
});

function columnsOf(buttons) {
  if (buttons.length < 2) return 1;
  const top = buttons[0].getBoundingClientRect().top;
  const n = buttons.findIndex((b) => b.getBoundingClientRect().top > top + 1);
  return n < 0 ? buttons.length : n;
}

$("results").addEventListener("click", (event) => {
  const button = event.target.closest(".result");
  if (!button) return;
  const index = Number(button.dataset.index);
  detail.open(results, index);
});

// --- start -----------------------------------------------------------------------------

async function load() {
  readUrl();
  await datasets.refresh();
  query.restore(state.anchor, state.box);
  syncControls();
  uploader.target(datasets.current());
  runSearch(0);
}

// Small screens: results first, the filter panel folded.
const narrow = matchMedia("(max-width: 900px)");
if (narrow.matches) $("facets-panel").open = false;
narrow.addEventListener("change", (e) => { $("facets-panel").open = !e.matches; });
document.addEventListener("pixdex:error", (event) => toast(event.detail, "error"));
signIn(load);
