"""The leaderboard page's style sheet and script (inline in the page; see board_html).

Layout rules worth knowing before changing them: no element around the table may set
`overflow` (a scrolling box would capture `position: sticky` and the header would scroll away
with it), so when every column is shown the document itself scrolls sideways and the frozen
identity column sticks to the viewport's left edge; below 760 px wide each row becomes a card.
"""

STYLE = """
:root { --fg: #1d2329; --muted: #5b6672; --line: #d8dee4; --win: #fff3c4; --up: #116329;
  --down: #b3261e; --head: #eef1f4; --accent: #0b5cad; --bg: #fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header, main > section, footer { max-width: 1400px; margin: 0 auto; padding: 0 20px; }
#results { max-width: none; }
#results > *:not(.view-table) { max-width: 1360px; }
h1 { font-size: 21px; margin: 14px 0 2px; }
h2 { font-size: 18px; margin: 22px 0 6px; }
h3 { font-size: 13px; margin: 4px 0 6px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.intro { margin: 2px 0 0; color: var(--muted); max-width: 120ch; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid #f59f00; outline-offset: 1px; }
a.strat { color: inherit; text-decoration: underline dotted var(--muted); text-underline-offset: 2px; }
.sub { display: block; color: var(--muted); font-size: 12px; line-height: 1.3; white-space: normal;
  font-weight: 400; }
.nw { white-space: nowrap; }
li, dd, table.verdicts td { overflow-wrap: anywhere; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-weight: 700; font-size: 12px;
  white-space: nowrap; border: 1px solid var(--line); }
.badge.win { background: #ffe066; border-color: #e0b400; }
.badge.nowin { background: #f1f3f5; }
.badge.under { background: #e7f5ff; border-color: #a5d8ff; }
.badge.none { background: #fff; color: var(--muted); }
.role { font-size: 11px; padding: 0 5px; border-radius: 3px; color: #fff; white-space: nowrap;
  vertical-align: 1px; }
.role-method { background: #c2255c; }
.role-baseline { background: #1864ab; }
.role-control { background: #087f5b; }
.star { color: #b58100; }
.sig { font-weight: 700; }
.sig.up { color: var(--up); }
.sig.down { color: var(--down); }
.noise { color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; }

/* the verdict */
.verdict .summary { margin: 0 0 4px; }
details > summary { cursor: pointer; color: var(--accent); }
details.rule p, details.sentences ul { max-width: 120ch; }
details.rule, details.sentences { margin: 4px 0; font-size: 13px; }
table.verdicts { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 6px; }
table.verdicts th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px;
  border-bottom: 2px solid var(--line); padding: 3px 8px; }
table.verdicts td { padding: 3px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.verdicts td:nth-child(3) { min-width: 150px; max-width: 220px; overflow-wrap: normal; }
table.verdicts td:nth-child(4), table.verdicts td:nth-child(5) { min-width: 190px; }
table.verdicts tr.win td { background: var(--win); }
ul.lines li { margin-bottom: 4px; }
/* the cost-elsewhere tables: plain, in their own sideways-scrolling box (no sticky header here) */
.scroll-x { overflow-x: auto; max-width: 100%; }
table.plain { border-collapse: collapse; font-size: 13px; margin: 6px 0 14px; }
table.plain th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px;
  border-bottom: 2px solid var(--line); padding: 3px 8px; }
table.plain td { padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.plain td.num { text-align: right; font-variant-numeric: tabular-nums; }

/* the table */
.filters { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin: 8px 0 6px; }
.filters label { font-size: 13px; color: var(--muted); }
.filters select, .filters input { font: inherit; padding: 2px 6px; margin-left: 4px; max-width: 220px; }
.count { color: var(--muted); font-size: 13px; }
.views button[aria-pressed=true] { background: var(--fg); color: #fff; }
button { font: inherit; font-size: 13px; padding: 2px 10px; }
p.same { margin: 4px 0 0; font-size: 13px; color: var(--muted); }
p.same b { color: var(--fg); font-weight: 600; }
details.chooser { font-size: 13px; margin: 0 0 8px; }
details.chooser ul { columns: 2 380px; padding-left: 18px; margin: 4px 0; }
details.chooser li { break-inside: avoid; margin-bottom: 3px; }
.meaning { color: var(--muted); }
.view-table { padding: 0 20px; }
table#board { border-collapse: separate; border-spacing: 0; min-width: 100%; font-size: 13.5px; }
table#board.wide { width: max-content; }
#board.wide td.identity { width: 260px; }
table#board caption { text-align: left; caption-side: top; font-size: 12.5px; color: var(--muted);
  padding: 2px 0 6px; max-width: 1360px; }
#board [hidden] { display: none !important; }
#board > thead th { position: sticky; top: 0; z-index: 2; background: var(--head); text-align: left;
  font-weight: 600; padding: 0; border-bottom: 2px solid var(--line); vertical-align: bottom; }
#board > thead th.num { text-align: right; }
#board th button.sort { all: unset; display: block; padding: 6px 8px; cursor: pointer; box-sizing: border-box;
  width: 100%; text-align: inherit; }
#board th button.sort:focus-visible { outline: 3px solid #f59f00; outline-offset: -3px; }
#board th button.sort:hover { color: var(--accent); }
#board th .arrow { color: var(--accent); }
#board th[aria-sort=ascending] .arrow::after { content: "\\00a0▲"; }
#board th[aria-sort=descending] .arrow::after { content: "\\00a0▼"; }
#board > tbody > tr.main { cursor: pointer; background: var(--bg); }
#board > tbody > tr.main > td { padding: 5px 8px; border-top: 1px solid var(--line); white-space: nowrap;
  vertical-align: top; background: inherit; }
#board > tbody > tr.main > td.wrap { white-space: normal; }
#board > tbody > tr.main:hover { background: #f0f6fc; }
#board > tbody.win > tr.main { background: var(--win); }
#board .identity { position: sticky; left: 0; z-index: 1; }
#board > thead th.identity { z-index: 3; }
#board td.identity { white-space: normal; min-width: 190px; max-width: 300px; overflow-wrap: anywhere;
  box-shadow: 1px 0 0 var(--line); }
#board td[data-col=budget] { max-width: 230px; min-width: 130px; }
#board > thead th[data-col=budget] { text-align: left; }
#board td[data-col=vs_best], #board td[data-col=vs_tuned] { min-width: 150px; max-width: 220px; }
.toggle { border: 0; background: none; cursor: pointer; font-size: 13px; color: var(--accent);
  padding: 0 6px 0 0; float: left; }
tbody.open .toggle { transform: rotate(90deg); }
.tag { font-size: 11px; color: var(--muted); border: 1px solid var(--line); border-radius: 3px;
  padding: 0 3px; }
tr.details > td { background: #fafbfc; border-top: 1px dashed var(--line); padding: 0; }
.detail-body { position: sticky; left: 0; max-width: calc(100vw - 40px); padding: 10px 16px 14px 30px;
  display: flex; flex-wrap: wrap; gap: 12px 40px; align-items: flex-start; white-space: normal; }
.detail-body section { flex: 0 1 auto; min-width: 0; max-width: 100%; }
.detail-body section.fingerprint { flex: 1 1 320px; }
.detail-body section.cmd-box { flex: 1 1 100%; }
section.cells-box { overflow-x: auto; }
table.cells { border-collapse: collapse; font-size: 12.5px; }
table.cells th, table.cells td { padding: 2px 8px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
table.cells th { color: var(--muted); font-weight: 600; }
table.cells td.num { text-align: right; }
table.cells tr.used td { font-weight: 600; }
pre { margin: 0; padding: 8px 10px; background: #f3f5f7; border: 1px solid var(--line);
  border-radius: 4px; white-space: pre-wrap; word-break: break-all; font-size: 12.5px; }
.hint { font-size: 12.5px; color: var(--muted); margin: 4px 0 8px; max-width: 120ch; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; font-size: 12.5px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
dd code { display: inline-block; margin-right: 10px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }

/* pivot */
.pivot-box { overflow-x: auto; }
table.pivot { border-collapse: collapse; font-size: 13px; }
table.pivot caption { text-align: left; color: var(--muted); font-size: 12.5px; padding-bottom: 6px; }
table.pivot th, table.pivot td { padding: 3px 8px; border-bottom: 1px solid var(--line); }
table.pivot thead th { background: var(--head); text-align: center; }
table.pivot th.identity { text-align: left; font-weight: 500; background: var(--bg); position: sticky;
  left: 0; }
table.pivot td.top { font-weight: 700; }
table.pivot td.win { background: var(--win); }
table.pivot td.empty { color: var(--line); text-align: center; }
table.pivot .sub { white-space: nowrap; }

/* plots and the rest */
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 14px 18px; }
figure.panel { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
figure.panel figcaption { font-weight: 600; font-size: 13px; }
figure.panel > svg { display: block; width: 100%; height: auto; font-size: 11px; }
svg .grid { stroke: #eceff2; }
svg .frame { stroke: #adb5bd; }
svg .ref { stroke: #868e96; stroke-dasharray: 2 3; stroke-width: 1.4; }
svg .tick { fill: var(--muted); font-size: 10px; }
svg .axis { fill: var(--muted); font-size: 11px; }
svg .name { fill: var(--fg); font-size: 10.5px; }
ul.keys { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 2px 12px;
  font-size: 12px; }
svg.key { vertical-align: middle; margin-right: 4px; }
svg .reflabel { fill: var(--muted); font-size: 10px; }
p.more { font-size: 11.5px; color: var(--muted); margin: 2px 0 0; }
figure.raster { margin: 14px 0 0; }
figure.raster img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
  cursor: zoom-in; }
figure.raster img.zoom { max-width: none; cursor: zoom-out; }
figure.raster.zoomed { overflow-x: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
dl.glossary { font-size: 13px; gap: 4px 14px; }
dl.glossary dt { color: var(--fg); font-weight: 600; }
dl.glossary dt:target, dl.glossary dt:target + dd { background: var(--win); }
ul.downloads { font-size: 13px; }
footer { color: var(--muted); font-size: 12.5px; margin: 24px auto 30px; }

/* a phone: the verdicts and the rows become cards, the headers a row of sort buttons */
@media (max-width: 760px) {
  header, main > section, footer, .view-table { padding: 0 10px; }
  table.verdicts, table.verdicts tbody, table.verdicts tr, table.verdicts td { display: block; width: 100%; }
  table.verdicts thead { display: none; }
  table.verdicts tr { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 4px 0;
    display: grid; grid-template-columns: 1fr 1fr; }
  table.verdicts td { border: 0; padding: 1px 10px; width: auto; min-width: 0 !important;
    max-width: none !important; }
  table.verdicts td:first-child, table.verdicts td:last-child { grid-column: 1 / -1; }
  table.verdicts tr.win { background: var(--win); }
  table.verdicts tr.win td { background: none; }
  table.verdicts td::before, #board td::before { content: attr(data-label); display: block; font-size: 11px;
    color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
  table.verdicts td:first-child::before, #board td.identity::before { content: none; }
  table#board, #board > thead, #board > tbody, #board tr, #board td { display: block; width: 100%;
    min-width: 0; max-width: none; }
  table#board, table#board.wide { min-width: 0; width: 100%; }
  table#board caption { display: block; max-width: none; }
  #board > thead { position: sticky; top: 0; z-index: 3; background: var(--bg); padding: 4px 0;
    border-bottom: 1px solid var(--line); }
  #board > thead tr { display: flex; flex-wrap: nowrap; gap: 4px; overflow-x: auto; }
  #board > thead th { position: static; display: block; border: 1px solid var(--line); border-radius: 4px;
    width: auto; flex: none; white-space: nowrap; }
  #board th button.sort { padding: 2px 8px; font-size: 12px; }
  #board > tbody { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; }
  #board > tbody > tr.main { display: grid; grid-template-columns: 1fr 1fr; }
  #board > tbody > tr.main > td { border: 0; padding: 3px 10px; text-align: left; white-space: normal; }
  #board > tbody > tr.main > td.identity { grid-column: 1 / -1; position: static; box-shadow: none;
    font-size: 14.5px; }
  #board > tbody > tr.main > td:empty { display: none; }
  .detail-body { max-width: none; padding: 8px 10px; }
}
"""

# Reads values only from data attributes and writes only textContent / attributes: never markup.
SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("board");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var bodies = Array.prototype.slice.call(table.tBodies);
  var filters = Array.prototype.slice.call(document.querySelectorAll("[data-filter]"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("[data-colkey]"));
  var views = Array.prototype.slice.call(document.querySelectorAll("[data-view]"));
  var count = document.querySelector(".count");
  function keyOf(b) { return b.getAttribute("data-colkey"); }
  function setShown(el, on) {
    if (on) { el.removeAttribute("hidden"); } else { el.setAttribute("hidden", ""); }
  }
  var compact = boxes.filter(function (b) { return b.checked; }).map(keyOf);
  var sortCol = "", sortDir = "", view = "table";

  function cellValue(body, col) {
    var cell = body.querySelector('td[data-col="' + CSS.escape(col) + '"]');
    return cell ? cell.getAttribute("data-v") : "";
  }

  function sortBy(th, dir) {
    var col = th.getAttribute("data-col"), numeric = th.getAttribute("data-type") === "num";
    var sign = dir === "descending" ? -1 : 1;
    var keyed = bodies.map(function (b) {
      var raw = cellValue(b, col);
      return { body: b, empty: raw === "", v: numeric ? parseFloat(raw) : raw.toLowerCase(),
               i: +b.getAttribute("data-i") };
    });
    keyed.sort(function (a, b) {
      if (a.empty !== b.empty) { return a.empty ? 1 : -1; }  // missing values last either way
      if (a.v < b.v) { return -sign; }
      if (a.v > b.v) { return sign; }
      return a.i - b.i;
    });
    keyed.forEach(function (k) { table.appendChild(k.body); });
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    sortCol = col; sortDir = dir;
  }

  function applyFilters() {
    var shown = 0, want = {};
    filters.forEach(function (f) { want[f.getAttribute("data-filter")] = f.value; });
    var keys = Object.keys(want).filter(function (k) { return k !== "q"; });
    var terms = (want.q || "").toLowerCase().split(/\\s+/).filter(function (t) { return t; });
    bodies.forEach(function (b) {
      var ok = keys.every(function (k) { return !want[k] || b.getAttribute("data-" + k) === want[k]; });
      if (ok && terms.length) {  // every word somewhere in the row (any column, shown or not)
        var text = (b.rows[0].textContent + " " + keys.map(function (k) {
          return b.getAttribute("data-" + k); }).join(" ")).toLowerCase();
        ok = terms.every(function (t) { return text.indexOf(t) !== -1; });
      }
      if (ok) { b.removeAttribute("hidden"); shown++; } else { b.setAttribute("hidden", ""); }
    });
    Array.prototype.forEach.call(document.querySelectorAll(".pivot tbody tr"), function (tr) {
      var role = tr.getAttribute("data-role");
      setShown(tr, !want.role || role === want.role);
    });
    count.textContent = shown + " of " + bodies.length + " rows";
  }

  function showColumns(keys) {
    var on = {};
    keys.forEach(function (k) { on[k] = true; });
    on.identity = true;
    boxes.forEach(function (b) { b.checked = !!on[b.getAttribute("data-colkey")]; });
    Array.prototype.forEach.call(table.querySelectorAll("[data-col]"), function (cell) {
      setShown(cell, on[cell.getAttribute("data-col")]);
    });
    var n = Object.keys(on).filter(function (k) {
      return heads.some(function (h) { return h.getAttribute("data-col") === k; });
    }).length;
    Array.prototype.forEach.call(table.querySelectorAll("tr.details > td"), function (td) {
      td.colSpan = n;
    });
    // beyond the compact set the table takes its natural width (the page scrolls sideways)
    table.classList.toggle("wide", keys.some(function (k) { return compact.indexOf(k) === -1; }));
  }

  function chosenColumns() {
    return boxes.filter(function (b) { return b.checked; }).map(keyOf);
  }

  function setView(name) {
    view = name === "pivot" ? "pivot" : "table";
    views.forEach(function (v) {
      v.setAttribute("aria-pressed", v.getAttribute("data-view") === view ? "true" : "false");
    });
    var t = document.querySelector(".view-table"), p = document.querySelector(".view-pivot");
    if (view === "pivot") { t.setAttribute("hidden", ""); p.removeAttribute("hidden"); }
    else { p.setAttribute("hidden", ""); t.removeAttribute("hidden"); }
  }

  function save() {
    var p = new URLSearchParams();
    if (sortCol) { p.set("sort", sortCol); if (sortDir === "descending") { p.set("dir", "desc"); } }
    filters.forEach(function (f) { if (f.value) { p.set(f.getAttribute("data-filter"), f.value); } });
    var cols = chosenColumns();
    if (cols.join(",") !== compact.join(",")) { p.set("cols", cols.join(",")); }
    if (view !== "table") { p.set("view", view); }
    try { history.replaceState(null, "", "#" + p.toString()); } catch (e) { /* file: may refuse */ }
  }

  function toggle(body) {
    var details = body.rows[1], open = details.hasAttribute("hidden");
    if (open) { details.removeAttribute("hidden"); } else { details.setAttribute("hidden", ""); }
    body.classList.toggle("open", open);
    body.querySelector(".toggle").setAttribute("aria-expanded", open ? "true" : "false");
  }

  heads.forEach(function (th) {
    th.querySelector("button.sort").addEventListener("click", function () {
      sortBy(th, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending");
      save();
    });
  });
  bodies.forEach(function (b) {
    b.rows[0].addEventListener("click", function (ev) {
      if (ev.target.closest("a")) { return; }
      if (!window.getSelection().toString()) { toggle(b); }
    });
  });
  filters.forEach(function (f) {
    f.addEventListener(f.tagName === "INPUT" ? "input" : "change", function () { applyFilters(); save(); });
  });
  boxes.forEach(function (b) {
    b.addEventListener("change", function () { showColumns(chosenColumns()); save(); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("[data-cols]"), function (btn) {
    btn.addEventListener("click", function () {
      showColumns(btn.getAttribute("data-cols") === "all"
        ? boxes.map(keyOf) : compact);
      save();
    });
  });
  views.forEach(function (v) {
    v.addEventListener("click", function () { setView(v.getAttribute("data-view")); save(); });
  });
  document.querySelector(".reset").addEventListener("click", function () {
    filters.forEach(function (f) { f.value = ""; });
    bodies.slice().sort(function (a, b) { return a.getAttribute("data-i") - b.getAttribute("data-i"); })
      .forEach(function (b) { table.appendChild(b); });
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    sortCol = ""; sortDir = "";
    showColumns(compact); setView("table");
    applyFilters(); save();
  });
  Array.prototype.forEach.call(document.querySelectorAll("figure.raster img"), function (img) {
    img.addEventListener("click", function () {
      img.classList.toggle("zoom");
      img.parentNode.classList.toggle("zoomed");
    });
  });

  // a shared link: #sort=COLUMN&dir=desc&model=..&task=..&strategy=..&role=..&q=..&cols=a,b&view=pivot&open=N
  var state = new URLSearchParams(location.hash.replace(/^#/, ""));
  filters.forEach(function (f) {
    var v = state.get(f.getAttribute("data-filter"));
    if (v !== null) { f.value = v; }
  });
  if (state.get("cols")) { showColumns(state.get("cols").split(",")); }
  setView(state.get("view") || "table");
  applyFilters();
  var th = heads.filter(function (h) { return h.getAttribute("data-col") === state.get("sort"); })[0];
  if (th) {
    sortBy(th, state.get("dir") === "desc" ? "descending" : "ascending");
  }
  (state.get("open") || "").split(",").forEach(function (i) {
    var b = table.querySelector('tbody[data-i="' + CSS.escape(i) + '"]');
    if (b && i !== "") { toggle(b); }
  });
  document.documentElement.setAttribute("data-ready", "1");
})();
"""
