// The culling page: a virtualised grid over the server's view of the collection, a loupe, the map,
// and the keyboard. Every change goes to the server at once (saved there); nothing is rebuilt.
"use strict";
const $ = (id) => document.getElementById(id);
const API = "api/";
const FACETS = ["species", "time_of_day", "artifact", "info_bar", "location", "camera"];
const FLAGS = [["any", "all"], ["unflagged", "unflagged"], ["favorite", "favourites (P)"], ["reject", "rejects (X)"],
               ["not-rejected", "not rejected"], ["picked", "favourite or starred"]];
const PAGE = 200;
const S = {
  key: null, view: Math.random().toString(36).slice(2), client: Math.random().toString(36).slice(2), shown: 0, matched: 0, total: 0,
  pages: new Map(), pending: new Map(), cur: 0, sel: new Set(), loupe: false, loupeRow: null,
  q: { flag: "any", min_stars: 0, sort: "time", stack_bursts: false, expanded: [] },
  picks: Object.fromEntries(FACETS.map((f) => [f, new Set()])), cols: 6, tileW: 180, tileH: 150,
  undo: 0, busy: 0, version: 0, drawn: "",
};
// what the benchmark and tests read
window.cull = { S, lastAction: null, lastQuery: null, firstPaint: null, ready: false, errors: [] };

function status(text, error) {
  const el = $("status"); el.textContent = text || ""; el.classList.toggle("error", !!error);
  if (error) window.cull.errors.push(text);
}
async function call(path, data, method) {
  const opts = data === undefined ? { method: method || "GET" } :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) };
  const r = await fetch(API + path, opts);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok || body.error) { const msg = body.error || (body.detail && JSON.stringify(body.detail)) || r.statusText;
    status(msg, true); throw new Error(msg); }
  return body;
}
const fmt = (n) => Number(n).toLocaleString("en-US");

// ------------------------------------------------------------------------------------ rows (paged)
function rowAt(i) {
  const p = S.pages.get(Math.floor(i / PAGE));
  if (!p) return null;
  const k = i - p.offset;
  return k < p.rows.length ? { i, row: p.rows[k], id: p.ids[k], fav: p.fav[k], rej: p.rej[k], stars: p.stars[k],
    burst: p.burst[k], size: p.size[k], species: p.species[k], problem: p.problem[k] } : null;
}
function loadPage(n) {
  if (S.pages.has(n)) return Promise.resolve(S.pages.get(n));
  if (S.pending.has(n)) return S.pending.get(n);
  const key = S.key, view = S.view;
  const pr = call(`rows?key=${key}&view=${view}&offset=${n * PAGE}&limit=${PAGE}`).then((p) => {
    S.pending.delete(n);
    if (key === S.key && view === S.view) { S.pages.set(n, p); S.version++; }
    return p;
  }, (e) => { S.pending.delete(n); throw e; });
  S.pending.set(n, pr);
  return pr;
}
function refetchPages() {             // fresh copies of the cached pages, swapped in as they arrive
  const key = S.key, view = S.view;
  for (const n of [...S.pages.keys()]) {
    call(`rows?key=${key}&view=${view}&offset=${n * PAGE}&limit=${PAGE}`).then((p) => {
      if (key === S.key && view === S.view) { S.pages.set(n, p); S.version++; render(); }
    }, () => {});
  }
}
function patchStates(states) {          // a saved action's result into the cached pages
  S.version++;
  const by = new Map(states.map((s) => [s.row, s]));
  for (const p of S.pages.values()) {
    p.rows.forEach((r, k) => { const s = by.get(r); if (s) { p.fav[k] = +s.favorite; p.rej[k] = +s.reject; p.stars[k] = s.stars; } });
  }
}

// ------------------------------------------------------------------------------------ grid
function layout() {
  const w = $("gridwrap").clientWidth - 4;
  S.cols = Math.max(1, Math.floor(w / 180));
  S.tileW = Math.floor(w / S.cols); S.tileH = Math.round(S.tileW * 0.78);
  $("spacer").style.height = Math.ceil(S.shown / S.cols) * S.tileH + "px";
}
function tileHTML(r) {
  const cls = ["tile", r.fav ? "fav" : "", r.rej ? "rej" : "", r.problem ? "problem" : "",
    r.i === S.cur ? "cur" : "", S.sel.has(r.row) ? "sel" : ""].join(" ");
  const flag = r.fav ? "● P" : r.rej ? "✗" : "";
  const stars = r.stars ? "★".repeat(r.stars) : "";
  const burst = r.size > 1 ? `<span class="badge burst" data-burst="${r.burst}" title="burst of ${r.size}: click to ${
    S.q.expanded.includes(r.burst) ? "stack" : "show all"}">×${r.size}</span>` : "";
  return `<div class="${cls}" data-i="${r.i}" data-row="${r.row}" style="left:${(r.i % S.cols) * S.tileW}px;top:${
    Math.floor(r.i / S.cols) * S.tileH}px;width:${S.tileW}px;height:${S.tileH}px" title="${r.problem ? "cannot show: " + r.problem.replace(/"/g, "'") : r.id}">` +
    `<div class="pic"><img loading="eager" decoding="async" src="${API}thumb/${S.key}/${r.row}" alt="">` +
    `${flag ? `<span class="badge flag">${flag}</span>` : ""}${stars ? `<span class="badge stars">${stars}</span>` : ""}` +
    `${burst}<span class="badge sp">${r.species === "(none)" ? "" : r.species}</span></div></div>`;
}
let renderQueued = false;
function render() {
  if (renderQueued) return; renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderNow(); });
}
function visibleRange() {
  const wrap = $("gridwrap");
  const first = Math.max(0, Math.floor(wrap.scrollTop / S.tileH) * S.cols - S.cols);
  const last = Math.min(S.shown, Math.ceil((wrap.scrollTop + wrap.clientHeight) / S.tileH) * S.cols + S.cols);
  return [first, last];
}
function renderNow() {
  if (!S.key) return;
  const [first, last] = visibleRange();
  const sig = `${first}:${last}:${S.cur}:${S.cols}:${S.version}:${S.key}:${S.view}`;
  if (sig === S.drawn) return true;                // nothing changed: the tiles (and their images) stay
  const need = new Set();
  const parts = [];
  for (let i = first; i < last; i++) {
    const r = rowAt(i);
    if (r) parts.push(tileHTML(r)); else need.add(Math.floor(i / PAGE));
  }
  $("spacer").innerHTML = parts.join("");
  S.drawn = need.size === 0 ? sig : "";
  for (const n of need) loadPage(n).then(render, () => {});
  return need.size === 0;
}
function visibleImagesLoaded() {
  const imgs = [...$("spacer").querySelectorAll("img")];
  const wrap = $("gridwrap").getBoundingClientRect();
  const vis = imgs.filter((im) => { const b = im.getBoundingClientRect(); return b.bottom > wrap.top && b.top < wrap.bottom; });
  return vis.length > 0 && vis.every((im) => im.complete);
}
function whenPainted(cb) {        // all visible rows loaded and their thumbnails decoded
  const t0 = performance.now();
  const tick = () => {
    const ok = S.shown === 0 || (renderNow() && visibleImagesLoaded());
    if (ok || performance.now() - t0 > 20000) cb(performance.now()); else setTimeout(tick, 8);
  };
  tick();
}
function setCur(i, scroll = true) {
  if (!S.shown) return;
  S.cur = Math.max(0, Math.min(S.shown - 1, i));
  if (scroll) {
    const wrap = $("gridwrap"), top = Math.floor(S.cur / S.cols) * S.tileH;
    if (top < wrap.scrollTop) wrap.scrollTop = top;
    else if (top + S.tileH > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = top + S.tileH - wrap.clientHeight;
  }
  if (S.loupe) showLoupe(); else renderNow();      // the grid under the loupe is redrawn when it closes
}

// ------------------------------------------------------------------------------------ filters
function queryBody() {
  const q = Object.assign({}, S.q);
  for (const f of FACETS) q[f] = [...S.picks[f]];
  const g = $("glitch_min").value; q.glitch_min = g === "" ? null : Number(g);
  q.date_from = $("date_from").value || null; q.date_to = $("date_to").value || null;
  return q;
}
function facetList(f, counts) {
  const el = $("f-" + f);
  const values = new Set([...Object.keys(counts || {}), ...S.picks[f]]);
  const sorted = [...values].sort((a, b) => (counts[b] || 0) - (counts[a] || 0) || a.localeCompare(b));
  $("s-" + f).hidden = sorted.length <= 1 && !S.picks[f].size && (sorted[0] === "(none)" || !sorted.length);
  el.innerHTML = sorted.slice(0, 200).map((v) => `<label class="${counts[v] ? "" : "zero"}"><input type="checkbox" data-facet="${f}" value="${
    v.replace(/"/g, "&quot;")}" ${S.picks[f].has(v) ? "checked" : ""}><span>${v}</span><span class="n">${fmt(counts[v] || 0)}</span></label>`).join("");
}
let countsTimer = null;
function refreshCounts() {            // after an action: the sidebar's counts follow, the grid stays as it is
  clearTimeout(countsTimer);
  countsTimer = setTimeout(async () => {
    const res = await call("counts", { key: S.key, query: queryBody() }).catch(() => null);
    if (res) { const shown = S.shown; showCounts(Object.assign(res, { shown: res.matched === S.matched ? shown : res.shown }));
      window.cull.countsAt = performance.now(); }
  }, 250);
}
function showCounts(res) {
  for (const f of FACETS) facetList(f, res.counts[f]);
  $("f-flag").innerHTML = FLAGS.map(([v, label]) => `<label><input type="radio" name="flag" value="${v}" ${
    S.q.flag === v ? "checked" : ""}><span>${label}</span><span class="n">${fmt(res.flags[v] || 0)}</span></label>`).join("");
  $("f-stars").innerHTML = [0, 1, 2, 3, 4, 5].map((n) => `<label><input type="radio" name="stars" value="${n}" ${
    S.q.min_stars === n ? "checked" : ""}><span>${n ? "★".repeat(n) : "any"}</span></label>`).join("");
  $("count").textContent = `${fmt(res.matched)} of ${fmt(res.total)} images` + (res.shown !== res.matched ? ` (${fmt(res.shown)} tiles)` : "");
}
async function query(keepCurrent) {
  if (!S.key) return;
  const t0 = performance.now();
  const curRow = keepCurrent ? (rowAt(S.cur) || {}).row : undefined;
  S.view = Math.random().toString(36).slice(2);
  const res = await call("query", { key: S.key, view: S.view, query: queryBody() });
  S.pages = new Map(); S.pending = new Map();
  S.shown = res.shown; S.matched = res.matched; S.total = res.total;
  showCounts(res);
  layout();
  if (!keepCurrent) { S.cur = 0; $("gridwrap").scrollTop = 0; }
  await loadPage(Math.floor(S.cur / PAGE)).catch(() => {});
  if (curRow !== undefined) { /* stay near the same image when it is still shown */ }
  S.cur = Math.min(S.cur, Math.max(0, S.shown - 1));
  whenPainted((t) => { window.cull.lastQuery = { start: t0, painted: t, shown: S.shown };
    if (window.cull.firstPaint === null) window.cull.firstPaint = t; });
  if (S.loupe) showLoupe();
}

// ------------------------------------------------------------------------------------ actions
async function targets() {
  if (S.sel.size) return [...S.sel];
  let r = rowAt(S.cur);
  if (!r && S.shown) { await loadPage(Math.floor(S.cur / PAGE)); r = rowAt(S.cur); }
  return r ? [r.row] : [];
}
async function act(action, value, advance) {
  const rows = rowAt(S.cur) && !S.sel.size ? [rowAt(S.cur).row] : await targets();
  if (!rows.length) return;
  const t0 = performance.now();
  const bulk = S.sel.size > 0;
  const from = S.cur;
  if (advance && !bulk) setCur(S.cur + 1);          // move on at once; the save follows
  const body = { key: S.key, rows, action, client: S.client };
  if (value !== undefined) body.value = value;
  if (action === "tag") { body.tag_key = $("tagkey").value.trim(); body.value = $("tagval").value.trim(); }
  S.busy++;
  try {
    const res = await call("act", body);
    patchStates(res.states);
    S.undo = res.undo; $("undo").disabled = !S.undo;
    const t1 = performance.now();
    refreshCounts();
    if (!S.loupe) renderNow();
    const n = res.states.length;
    status(`${action}${value !== undefined && action !== "tag" ? " " + value : ""}: ${n} image${n > 1 ? "s" : ""} saved`);
    const done = (t2) => { window.cull.lastAction = { action, start: t0, saved: t1, shown: t2, end: Math.max(t1, t2),
      from, to: S.cur }; };
    if (S.loupe) loupeShown().then(done); else done(performance.now());
  } finally { S.busy--; }
}
async function undo() {
  const res = await call("undo", { key: S.key, client: S.client });
  patchStates(res.states); S.undo = res.undo; $("undo").disabled = !S.undo;
  renderNow(); if (S.loupe) showLoupe(); refreshCounts();
  status(`undid ${res.action} (${res.states.length} image${res.states.length > 1 ? "s" : ""})`);
  window.cull.lastUndo = performance.now();
}
async function nextUnflagged() {
  for (let i = S.cur + 1; i < S.shown; i++) {
    let r = rowAt(i);
    if (!r) { await loadPage(Math.floor(i / PAGE)); r = rowAt(i); }
    if (r && !r.fav && !r.rej) { setCur(i); return; }
  }
  status("no unflagged image after this one");
}
async function bestOfBurst() {
  const r = rowAt(S.cur); if (!r) return;
  const res = await call("best", { key: S.key, row: r.row, client: S.client });
  patchStates(res.states); S.undo = res.undo; $("undo").disabled = !S.undo;
  renderNow(); if (S.loupe) showLoupe(); refreshCounts();
  status(`best of the burst: ${res.best}; ${res.rejected.length} other frame(s) rejected`);
}
async function similar() {
  const r = rowAt(S.cur); if (!r) return;
  status("finding similar images…");
  S.q.sort = "similar"; S.q.similar_to = r.id; $("sort").value = "similar";
  await query(); status(`sorted by similarity to ${r.id}`);
}

// ------------------------------------------------------------------------------------ loupe
let loupeWait = null;
function loupeShown() { return loupeWait || Promise.resolve(performance.now()); }
async function showLoupe(row) {
  const r = row !== undefined ? { row } : rowAt(S.cur);
  if (!r) return;
  S.loupe = true; $("loupe").hidden = false;
  S.loupeRow = r.row;
  const img = $("loupe-img");
  const src = `${API}image/${S.key}/${r.row}`;
  loupeWait = new Promise((resolve) => {
    if (img.getAttribute("src") === src && img.complete) { resolve(performance.now()); return; }
    img.onload = () => resolve(performance.now());
    img.onerror = () => resolve(performance.now());
    img.setAttribute("src", src);
  });
  // the next frames are fetched while this one is looked at
  for (const k of [1, 2]) { const n = rowAt(S.cur + k); if (n) { const im = new Image(); im.src = `${API}image/${S.key}/${n.row}`; } }
  const d = await call(`item/${S.key}/${r.row}`).catch(() => null);
  if (!d || S.loupeRow !== r.row) return;
  $("loupe").classList.toggle("rej", d.reject);
  $("loupe-problem").hidden = !d.problem; $("loupe-problem").textContent = d.problem ? "Cannot show this image: " + d.problem : "";
  img.hidden = !!d.problem && d.problem.includes("not found");
  const tagRows = Object.entries(d.tags).map(([k, t]) => `<tr><td>${k}</td><td>${Array.isArray(t.value) ? t.value.join(", ") : t.value}${
    t.score != null ? ` <span class="muted">${t.score}</span>` : ""} <span class="muted">${t.source}</span></td></tr>`).join("");
  $("loupe-info").innerHTML = `<div class="big">${d.favorite ? "● favourite" : d.reject ? "✗ rejected" : "unflagged"} ${
    d.stars ? "★".repeat(d.stars) : ""}</div><table>
    <tr><td>file</td><td>${d.file}</td></tr><tr><td>captured</td><td>${d.time || "?"}</td></tr>
    <tr><td>location</td><td>${d.location}</td></tr><tr><td>camera</td><td>${d.camera}</td></tr>
    <tr><td>species</td><td>${d.species}</td></tr><tr><td>time of day</td><td>${d.time_of_day}</td></tr>
    <tr><td>glitch score</td><td>${d.glitch == null ? "–" : d.glitch}</td></tr>${tagRows}</table>
    <p class="muted">${S.cur + 1} of ${fmt(S.shown)} · burst of ${d.burst.length}</p>`;
  $("loupe-burst").innerHTML = d.burst.length > 1 ? d.burst.map((b) => `<img src="${API}thumb/${S.key}/${b}" data-row="${b}" class="${
    b === r.row ? "on" : ""}" title="frame ${d.burst.indexOf(b) + 1}">`).join("") : "";
}
function closeLoupe() { S.loupe = false; $("loupe").hidden = true; setCur(S.cur); }

// ------------------------------------------------------------------------------------ map
const MAP = { cells: [], size: 48, drag: null };
async function openMap() {
  status("laying out the map…");
  const m = await call("map", { key: S.key, view: S.view });
  const grid = $("mapgrid");
  MAP.size = Math.max(24, Math.min(96, Math.floor((grid.clientWidth || window.innerWidth - 240) / m.cols)));
  MAP.cells = m.cells.map(([row, cell]) => ({ row, x: (cell % m.cols) * MAP.size, y: Math.floor(cell / m.cols) * MAP.size }));
  $("map").hidden = false;
  grid.innerHTML = `<div id="maprect" hidden></div>` + MAP.cells.map((c) => `<img src="${API}thumb/${S.key}/${c.row}" data-row="${
    c.row}" style="left:${c.x}px;top:${c.y}px;width:${MAP.size}px;height:${MAP.size}px">`).join("");
  $("mapinfo").textContent = `${fmt(m.cells.length)} images, ${m.cols} × ${m.rows}`;
  status("map ready: drag to select");
  mapMarks();
  window.cull.mapReady = performance.now();
}
function mapMarks() {
  const rows = new Map();
  for (const p of S.pages.values()) p.rows.forEach((r, k) => rows.set(r, [p.fav[k], p.rej[k]]));
  for (const im of $("mapgrid").querySelectorAll("img")) {
    const r = +im.dataset.row, st = rows.get(r);
    im.classList.toggle("sel", S.sel.has(r));
    if (st) { im.classList.toggle("fav", !!st[0]); im.classList.toggle("rej", !!st[1]); }
  }
}
function mapPoint(e) { const b = $("mapgrid").getBoundingClientRect(); const g = $("mapgrid");
  return [e.clientX - b.left + g.scrollLeft, e.clientY - b.top + g.scrollTop]; }

// ------------------------------------------------------------------------------------ selection
function updateSel() {
  S.version++;
  $("selbar").hidden = S.sel.size === 0;
  $("selcount").textContent = `${fmt(S.sel.size)} selected`;
  renderNow(); if (!$("map").hidden) mapMarks();
}

// ------------------------------------------------------------------------------------ wiring
async function openCollection(source) {
  status("opening…");
  const t0 = performance.now();
  const res = await call("open", { source, features: new URLSearchParams(location.search).get("features") || "" });
  S.key = res.key; S.sel.clear(); updateSel();
  const params = new URLSearchParams(location.search); params.set("source", source);
  history.replaceState(null, "", "?" + params.toString());
  for (const f of FACETS) S.picks[f].clear();
  const w = res.warnings || [];
  $("warnings-box").hidden = !w.length; $("warnings").innerHTML = w.map((x) => `<li>${x}</li>`).join("");
  status(`${fmt(res.total)} images · state ${res.state}`);
  await query();
  window.cull.opened = { start: t0, end: performance.now(), total: res.total };
  window.cull.ready = true;
  // up to 50,000 images the whole cache is made in the background; above, thumbnails are made as the grid shows them
  if (res.total <= 50000 && (res.thumbs.total === 0 || res.thumbs.done < res.thumbs.total || res.thumbs.running)) startThumbs();
}
async function startThumbs() {
  const j = await call("thumbs", { key: S.key }).catch(() => null);
  if (!j) return;
  const poll = async () => {
    const p = await call(`thumbs/${S.key}`).catch(() => null);
    if (!p) return;
    $("thumbs").textContent = p.running ? `thumbnails ${fmt(p.done)} / ${fmt(p.total)}` :
      `thumbnails ready${p.failed ? `, ${p.failed} cannot be shown` : ""}`;
    $("problems-box").hidden = !p.problems.length;
    $("problems").innerHTML = p.problems.map(([k, v]) => `<li title="${v.replace(/"/g, "'")}">${k}: ${v.split(": ").slice(-1)[0]}</li>`).join("");
    if (p.running) setTimeout(poll, 500);
    else { window.cull.thumbsDone = p; if (p.failed) refetchPages(); else render(); }   // mark the tiles that failed
  };
  poll();
}

document.addEventListener("keydown", (e) => {
  if (e.target.matches("input, select, textarea")) { if (e.key === "Escape") e.target.blur(); return; }
  if (!S.key) return;
  const k = e.key;
  const handled = () => { e.preventDefault(); e.stopPropagation(); };
  if (k === "ArrowRight") { handled(); setCur(S.cur + 1); }
  else if (k === "ArrowLeft") { handled(); setCur(S.cur - 1); }
  else if (k === "ArrowDown") { handled(); if (!S.loupe) setCur(S.cur + S.cols); else setCur(S.cur + 1); }
  else if (k === "ArrowUp") { handled(); if (!S.loupe) setCur(S.cur - S.cols); else setCur(S.cur - 1); }
  else if (k === "p" || k === "P") { handled(); act("favorite", undefined, true); }
  else if (k === "x" || k === "X") { handled(); act("reject", undefined, true); }
  else if (k === "u" || k === "U") { handled(); act("unflag", undefined, true); }
  else if (/^[0-5]$/.test(k)) { handled(); act("stars", Number(k), true); }
  else if (k === "n" || k === "N") { handled(); nextUnflagged(); }
  else if (k === " " || k === "Enter") { handled(); if (S.loupe) closeLoupe(); else showLoupe(); }
  else if (k === "Escape") { handled(); if (!$("map").hidden) $("map").hidden = true; else if (S.loupe) closeLoupe(); else { S.sel.clear(); updateSel(); } }
  else if (k === "z" || k === "Z") { handled(); undo().catch(() => {}); }
  else if (k === "s" || k === "S") { handled(); similar().catch(() => {}); }
  else if (k === "b" || k === "B") { handled(); bestOfBurst().catch(() => {}); }
  else if (k === "m" || k === "M") { handled(); openMap().catch(() => {}); }
  else if (k === "g" || k === "G") { handled(); closeLoupe(); $("map").hidden = true; }
});
$("spacer").addEventListener("click", (e) => {
  const b = e.target.closest(".burst");
  if (b) { const id = +b.dataset.burst; const ex = S.q.expanded;
    S.q.expanded = ex.includes(id) ? ex.filter((x) => x !== id) : ex.concat([id]); query(true); return; }
  const t = e.target.closest(".tile"); if (!t) return;
  const i = +t.dataset.i, row = +t.dataset.row;
  if (e.shiftKey || e.ctrlKey || e.metaKey) { S.sel.has(row) ? S.sel.delete(row) : S.sel.add(row); updateSel(); }
  setCur(i, false);
});
$("spacer").addEventListener("dblclick", (e) => { if (e.target.closest(".tile")) showLoupe(); });
$("gridwrap").addEventListener("scroll", render);
window.addEventListener("resize", () => { layout(); render(); });
$("side").addEventListener("change", (e) => {
  const t = e.target;
  if (t.dataset.facet) { const set = S.picks[t.dataset.facet]; t.checked ? set.add(t.value) : set.delete(t.value); }
  else if (t.name === "flag") S.q.flag = t.value;
  else if (t.name === "stars") S.q.min_stars = Number(t.value);
  query().catch(() => {});
  t.blur();
});
$("sort").addEventListener("change", (e) => {
  if (e.target.value === "similar") { similar().catch(() => {}); }
  else { S.q.sort = e.target.value; delete S.q.similar_to; query().catch(() => {}); }
  e.target.blur();
});
$("stack").addEventListener("change", (e) => { S.q.stack_bursts = e.target.checked; S.q.expanded = []; query().catch(() => {}); e.target.blur(); });
$("clear").addEventListener("click", () => {
  for (const f of FACETS) S.picks[f].clear();
  Object.assign(S.q, { flag: "any", min_stars: 0 }); $("glitch_min").value = ""; $("date_from").value = ""; $("date_to").value = "";
  query().catch(() => {});
});
$("open").addEventListener("click", () => openCollection($("source").value.trim()).catch(() => {}));
$("source").addEventListener("keydown", (e) => { if (e.key === "Enter") $("open").click(); });
$("undo").addEventListener("click", () => undo().catch(() => {}));
$("mapbtn").addEventListener("click", () => openMap().catch(() => {}));
$("mapclose").addEventListener("click", () => { $("map").hidden = true; });
$("selclear").addEventListener("click", () => { S.sel.clear(); updateSel(); });
$("tagbtn").addEventListener("click", () => act("tag").catch(() => {}));
for (const b of document.querySelectorAll("[data-bulk]")) b.addEventListener("click", () => act(b.dataset.bulk).then(() => { mapMarks(); }).catch(() => {}));
$("loupe-burst").addEventListener("click", (e) => { const r = e.target.dataset.row; if (r !== undefined) showLoupe(+r); });
const mg = $("mapgrid");
mg.addEventListener("mousedown", (e) => { e.preventDefault(); MAP.drag = { a: mapPoint(e), moved: false }; });
mg.addEventListener("mousemove", (e) => {
  if (!MAP.drag) return;
  const [x0, y0] = MAP.drag.a, [x1, y1] = mapPoint(e);
  if (Math.abs(x1 - x0) + Math.abs(y1 - y0) > 4) MAP.drag.moved = true;
  const r = $("maprect"); r.hidden = !MAP.drag.moved;
  Object.assign(r.style, { left: Math.min(x0, x1) + "px", top: Math.min(y0, y1) + "px",
    width: Math.abs(x1 - x0) + "px", height: Math.abs(y1 - y0) + "px" });
});
window.addEventListener("mouseup", (e) => {
  if (!MAP.drag) return;
  const d = MAP.drag; MAP.drag = null; $("maprect").hidden = true;
  const [x0, y0] = d.a, [x1, y1] = mapPoint(e);
  if (!d.moved) {            // a click opens the loupe on that image
    const c = MAP.cells.find((c) => x1 >= c.x && x1 < c.x + MAP.size && y1 >= c.y && y1 < c.y + MAP.size);
    if (c) { $("map").hidden = true; showLoupe(c.row); }
    return;
  }
  const [lx, hx, ly, hy] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
  if (!e.shiftKey) S.sel.clear();
  for (const c of MAP.cells) if (c.x + MAP.size > lx && c.x < hx && c.y + MAP.size > ly && c.y < hy) S.sel.add(c.row);
  updateSel(); status(`${fmt(S.sel.size)} selected on the map`);
});

const start = new URLSearchParams(location.search).get("source");
if (start) { $("source").value = start; openCollection(start).catch(() => {}); }
