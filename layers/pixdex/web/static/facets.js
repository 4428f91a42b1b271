// The filter panel: facet counts (from the API's "facets", or tallied over the loaded
// results when the server does not give them), folders as a tree.

import { el } from "./api.js";

// key: the API's facet name; field: the search body's filter; param: the page URL's.
export const FACETS = [
  { key: "objects", field: "objects", param: "objects", label: "Objects", multi: true },
  { key: "scenes", field: "scenes", param: "scenes", label: "Scenes", multi: true },
  { key: "attributes", field: "attributes", param: "attributes", label: "Attributes", multi: true },
  { key: "tags", field: "tag", param: "tag", label: "Tags", multi: true },
  { key: "annotations", field: "class_name", param: "class", label: "Classes", multi: true },
  { key: "folders", field: "folder_path", param: "folder", label: "Folders", multi: false },
  { key: "split", field: "split", param: "split", label: "Split", multi: false },
  { key: "batch_id", field: "batch_id", param: "batch", label: "Batch", multi: false },
  { key: "annotation_job_id", field: "annotation_job_id", param: "job", label: "Annotation job", multi: false },
];

export function facetFor(key) {
  return FACETS.find((f) => f.key === key);
}

/** Facet counts over `results` (each with the fields the page asks for). */
export function tallyFacets(results) {
  const counts = {};
  const bump = (key, value) => {
    if (value === undefined || value === null || value === "") return;
    const table = (counts[key] ||= new Map());
    table.set(value, (table.get(value) || 0) + 1);
  };
  for (const hit of results) {
    const auto = hit.auto_tags || {};
    for (const kind of ["objects", "scenes", "attributes"]) {
      for (const name of Object.keys(auto[kind] || {})) bump(kind, name);
    }
    for (const tag of hit.tags || []) bump("tags", tag);
    for (const name of Object.keys(hit.annotations || {})) bump("annotations", name);
    bump("folders", hit.folder);
    bump("split", hit.split);
    bump("batch_id", hit.batch_id);
    bump("annotation_job_id", hit.annotation_job_id);
  }
  const out = {};
  for (const [key, table] of Object.entries(counts)) {
    out[key] = [...table].map(([value, count]) => ({ value, count }))
      .sort((a, b) => b.count - a.count || a.value.localeCompare(b.value)).slice(0, 30);
  }
  return out;
}

/** Folder paths with counts -> rows of a tree (parents added, counted over children). */
function folderRows(entries) {
  const counts = new Map();
  const given = new Set();
  for (const { value, count } of entries) {
    const path = value.startsWith("/") ? value : `/${value}`;
    counts.set(path, (counts.get(path) || 0) + count);
    given.add(path);
  }
  for (const { value, count } of entries) {
    const parts = (value.startsWith("/") ? value : `/${value}`).split("/").filter(Boolean);
    for (let i = 1; i < parts.length; i += 1) {
      const parent = `/${parts.slice(0, i).join("/")}`;
      if (!given.has(parent)) counts.set(parent, (counts.get(parent) || 0) + count);
    }
  }
  return [...counts].sort((a, b) => a[0].localeCompare(b[0])).map(([path, count]) => {
    const parts = path.split("/").filter(Boolean);
    return { value: path, label: parts.at(-1) || "/", depth: Math.max(0, parts.length - 1), count };
  });
}

export function renderFacets(root, counts, filters, onToggle) {
  root.replaceChildren();
  let any = false;
  for (const facet of FACETS) {
    const entries = (counts && counts[facet.key]) || [];
    const chosen = filters[facet.key] || [];
    // Keep chosen values visible even when their count fell out of the top 30.
    const values = [...entries];
    for (const value of chosen) {
      if (!values.some((e) => e.value === value)) values.push({ value, count: 0 });
    }
    if (!values.length) continue;
    any = true;
    const rows = facet.key === "folders" ? folderRows(values)
      : values.map((e) => ({ value: e.value, label: e.value, depth: 0, count: e.count }));
    const list = el("ul", { class: "facet-list" });
    for (const row of rows) {
      const id = `facet-${facet.key}-${cssSafe(row.value)}`;
      const box = el("input", {
        type: "checkbox", id, checked: chosen.includes(row.value),
        "data-testid": "facet-option", dataset: { facet: facet.key, value: row.value },
        onchange: (event) => onToggle(facet.key, row.value, event.target.checked),
      });
      const li = el("li", {}, box, el("label", { for: id },
        el("span", { class: "facet-value", text: row.label }),
        el("span", { class: "count", text: String(row.count) })));
      if (row.depth) li.style.paddingInlineStart = `${row.depth * 0.9}rem`;
      list.append(li);
    }
    root.append(el("section", { class: "facet", "data-facet": facet.key },
      el("h3", { text: facet.label }), list));
  }
  if (!any) root.append(el("p", { class: "muted", text: "No filters for these results." }));
}

let serial = 0;
const ids = new Map();
function cssSafe(value) {
  if (!ids.has(value)) ids.set(value, (serial += 1));
  return ids.get(value);
}
