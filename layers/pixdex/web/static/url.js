// The search as the page URL says it: a shareable, reloadable link (never the key).

import { FACETS } from "./facets.js";

export const state = {
  ds: "", q: "", neg: "", like: "", anchor: "", box: null, t: 0, g: "", limit: 50,
  filters: {},
};

export function readUrl() {
  const p = new URLSearchParams(location.search);
  state.ds = p.get("ds") || "";
  state.q = p.get("q") || "";
  state.neg = p.get("neg") || "";
  state.like = p.get("like") || "";
  state.anchor = p.get("anchor") || "";
  const box = (p.get("box") || "").split(",").map(Number);
  state.box = box.length === 4 && box.every((v) => Number.isFinite(v))
    ? { x: box[0], y: box[1], width: box[2], height: box[3] } : null;
  state.t = Math.min(1, Math.max(0, Number(p.get("t")) || 0));
  state.g = /^[0-4]$/.test(p.get("g") || "") ? p.get("g") : "";
  const limit = Number(p.get("limit"));
  state.limit = Number.isInteger(limit) && limit >= 1 && limit <= 250 ? limit : 50;
  state.filters = {};
  for (const facet of FACETS) {
    const values = p.getAll(facet.param).filter(Boolean);
    if (values.length) state.filters[facet.key] = facet.multi ? values : values.slice(0, 1);
  }
}

// hasImage: the query image can be named in the link (an anchor, or this tab's copy).
export function writeUrl(push, hasImage) {
  const p = new URLSearchParams();
  if (state.ds) p.set("ds", state.ds);
  if (state.q) p.set("q", state.q);
  if (state.neg) p.set("neg", state.neg);
  if (state.like) p.set("like", state.like);
  if (state.anchor) p.set("anchor", state.anchor);
  if (state.box && (state.anchor || hasImage)) {
    p.set("box", [state.box.x, state.box.y, state.box.width, state.box.height]
      .map((v) => v.toFixed(4)).join(","));
  }
  if (state.t > 0) p.set("t", state.t.toFixed(2));
  if (state.g !== "") p.set("g", state.g);
  if (state.limit !== 50) p.set("limit", String(state.limit));
  for (const facet of FACETS) {
    for (const value of state.filters[facet.key] || []) p.append(facet.param, value);
  }
  const url = `${location.pathname}${p.toString() ? `?${p}` : ""}`;
  if (url === `${location.pathname}${location.search}`) return;
  history[push ? "pushState" : "replaceState"](null, "", url);
}
