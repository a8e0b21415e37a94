"""The review page: one HTML document, inline CSS and script, nothing fetched elsewhere.

Keys: arrows move, ``x`` or space flags the current item wrong (again: takes it back),
``1``–``9`` relabel it to the n-th label, ``0`` to "none of the labels", Enter accepts
the rest of the page, ``u`` takes back the last decision still standing, ``[`` / ``]``
switch label.
Every decision carries an id made in the browser and is re-sent until the server
acknowledges it, so a dropped connection neither loses nor doubles a click.
"""

PAGE_HTML = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>weaklabel review</title>
<style>
body{font:14px/1.4 system-ui,"Noto Sans KR","Noto Sans CJK KR",sans-serif;margin:0;color:#222;
background:#fafafa}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 16px;
z-index:2}
h1{font-size:17px;margin:0 0 6px}#tabs{display:flex;flex-wrap:wrap;gap:6px}
.tab{border:1px solid #ccc;border-radius:6px;padding:3px 8px;cursor:pointer;background:#fff;
min-width:120px;font:inherit;text-align:left}
.tab.on{border-color:#2b6cb0;box-shadow:0 0 0 2px #bee3f8}
.bar{height:4px;background:#eee;border-radius:2px;margin-top:3px}
.bar i{display:block;height:4px;background:#38a169;border-radius:2px}
#tools{margin-top:6px;display:flex;flex-wrap:wrap;gap:12px;align-items:center;color:#555}
#status{font-weight:600}#status.bad{color:#c53030}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;
padding:12px 16px}
.card{background:#fff;border:2px solid #e2e2e2;border-radius:6px;padding:4px;cursor:pointer;
position:relative;user-select:none}
.card img{width:100%;height:140px;object-fit:cover;display:block;border-radius:3px}
.card .text{height:140px;overflow:hidden;font-size:13px;background:#f4f1ea;padding:6px;
box-sizing:border-box;border-radius:3px}
.card .meta{font-size:11px;color:#666;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.card .ev{font-size:11px;color:#2c5282;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.card.cur{border-color:#2b6cb0}.card[data-state=reject]{border-color:#e53e3e;opacity:.75}
.card[data-state=reject]::after{content:"✕ wrong";position:absolute;top:8px;left:8px;
background:#e53e3e;color:#fff;padding:1px 6px;border-radius:3px;font-weight:700}
.card[data-state=relabel]{border-color:#d69e2e}
.card[data-state=accept]{border-color:#38a169}
.badge{position:absolute;top:8px;right:8px;background:#d69e2e;color:#fff;padding:1px 6px;
border-radius:3px;font-size:12px}
kbd{border:1px solid #bbb;border-radius:3px;padding:0 4px;background:#f7f7f7;font-size:12px}
#done{padding:40px;text-align:center;color:#555;font-size:16px}
</style></head>
<body data-ready="0" data-pending="0">
<header><h1 id="title">weaklabel review</h1><div id="tabs"></div>
<div id="tools"><span>click or <kbd>x</kbd> flag wrong · <kbd>1</kbd>–<kbd>9</kbd> relabel ·
<kbd>0</kbd> none of the labels · <kbd>Enter</kbd> accept the rest · <kbd>u</kbd> undo ·
<kbd>[</kbd><kbd>]</kbd> label</span>
<label>relabel current: <select id="picker"><option value="">—</option></select></label>
<button id="accept" type="button">Accept the rest of the page ⏎</button>
<button id="undo" type="button">Undo</button>
<span id="status">ready</span></div></header>
<main id="grid"></main><div id="done" hidden>Every item of this label is reviewed.</div>
<script>
"use strict";
const base = location.pathname.replace(/\\/+$/, "");
const S = {labels: [], choices: [], label: null, items: [], cur: 0, pending: 0};
const $ = (id) => document.getElementById(id);
function rid() {
  const a = new Uint8Array(16); crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}
function status(text, bad) {
  const s = $("status"); s.textContent = text; s.className = bad ? "bad" : "";
}
async function api(path, opts) {
  const r = await fetch(base + "/api/" + path, opts);
  if (r.status === 403) { status("this link is not valid", true); throw new Error("403"); }
  if (!r.ok && r.status !== 422) throw new Error(String(r.status));
  return r.json();
}
let chain = Promise.resolve();
function submit(decs) {
  S.pending++; document.body.dataset.pending = String(S.pending); status("saving…");
  const job = chain.then(async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await api("decide", {method: "POST",
          headers: {"Content-Type": "application/json"},
          body: JSON.stringify({decisions: decs})});
        if (res.errors && res.errors.length) status("not saved: " + res.errors[0].error, true);
        else status("saved ✓");
        return res;
      } catch (e) {
        if (String(e.message) === "403") return {acked: [], errors: []};
        status("offline, retrying…", true);
        await new Promise((ok) => setTimeout(ok, Math.min(8000, 300 * 2 ** attempt)));
      }
    }
  });
  chain = job.finally(() => {
    S.pending--; document.body.dataset.pending = String(S.pending);
    refreshState();
  });
  return job;
}
function esc(t) {
  return String(t).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}
function nameOf(id) {
  if (id === "") return "none";
  const c = S.choices.find((x) => x.id === id); return c ? c.name : id;
}
function renderTabs() {
  $("tabs").innerHTML = S.labels.map((l) => {
    const pct = l.total ? Math.round(100 * l.done / l.total) : 100;
    return `<button class="tab${l.id === S.label ? " on" : ""}" data-label="${esc(l.id)}">` +
      `${esc(l.name)} <b class="prog">${l.done}/${l.total}</b>` +
      `<div class="bar"><i style="width:${pct}%"></i></div></button>`;
  }).join("");
  for (const b of document.querySelectorAll(".tab"))
    b.onclick = () => loadPage(b.dataset.label);
}
function renderGrid() {
  const g = $("grid");
  $("done").hidden = S.items.length > 0;
  g.innerHTML = S.items.map((it, i) => {
    const st = it.decision ? it.decision.action : "";
    const badge = st !== "relabel" ? "" :
      `<span class="badge">→ ${esc(nameOf(it.decision.label))}</span>`;
    const body = it.has_image ?
      `<img src="${base}/img/${it.id}" alt="${esc(it.image)}" loading="lazy">` :
      `<div class="text">${esc(it.caption || "(no caption)")}</div>`;
    return `<div class="card${i === S.cur ? " cur" : ""}" data-item="${it.id}" ` +
      `data-state="${st}" title="${esc(it.why)}">${badge}${body}` +
      `<div class="meta">${esc(it.post_id)} · ${it.confidence.toFixed(2)} · ${esc(it.why)}</div>` +
      `<div class="ev">${esc(it.evidence)}</div></div>`;
  }).join("");
  for (const c of g.querySelectorAll(".card")) {
    c.onclick = () => { S.cur = indexOf(+c.dataset.item); toggle(S.cur); };
  }
}
function mine(it) { return {item: it.id, post_id: it.post_id, image: it.image}; }
function indexOf(id) { return S.items.findIndex((x) => x.id === id); }
async function refreshState() {
  try { const s = await api("state"); S.labels = s.labels; renderTabs(); } catch (e) {}
}
async function loadPage(label) {
  S.label = label;
  const p = await api("page?label=" + encodeURIComponent(label));
  S.items = p.items; S.labels = p.labels; S.cur = 0;
  renderTabs(); renderGrid();
  document.body.dataset.ready = "1";
  history.replaceState(null, "", "#" + encodeURIComponent(label));
}
function toggle(i) {
  const it = S.items[i]; if (!it) return;
  if (it.decision && it.decision.action === "reject") {
    const undo = {id: rid(), action: "undo", undoes: it.decision.id};
    it.decision = it.prev || null; it.prev = null;
    submit([undo]);
  } else {
    const d = {id: rid(), ...mine(it), action: "reject"};
    it.prev = it.decision; it.decision = {id: d.id, action: "reject", label: ""};
    submit([d]);
  }
  renderGrid();
}
function relabel(i, label) {
  const it = S.items[i]; if (!it) return;
  if (label === it.label) return;
  const d = {id: rid(), ...mine(it), action: "relabel", label: label};
  it.prev = it.decision; it.decision = {id: d.id, action: "relabel", label: label};
  submit([d]); renderGrid();
}
async function acceptRest() {
  const decs = [];
  for (const it of S.items) {
    if (!it.decision) {
      const d = {id: rid(), ...mine(it), action: "accept"};
      it.decision = {id: d.id, action: "accept", label: it.label}; decs.push(d);
    }
  }
  renderGrid();
  if (decs.length) await submit(decs);
  await chain; await loadPage(S.label);
}
async function undoLast() {
  await submit([{id: rid(), action: "undo"}]);
  await chain; await loadPage(S.label);
}
function move(delta) {
  const n = S.items.length; if (!n) return;
  S.cur = Math.max(0, Math.min(n - 1, S.cur + delta)); renderGrid();
  const c = document.querySelector(".card.cur"); if (c) c.scrollIntoView({block: "nearest"});
}
function cols() {
  const cards = document.querySelectorAll(".card"); if (cards.length < 2) return 1;
  const top = cards[0].offsetTop; let n = 0;
  for (const c of cards) { if (c.offsetTop !== top) break; n++; }
  return Math.max(1, n);
}
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "SELECT" || e.ctrlKey && e.key !== "z" || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k === "ArrowRight") move(1); else if (k === "ArrowLeft") move(-1);
  else if (k === "ArrowDown") move(cols()); else if (k === "ArrowUp") move(-cols());
  else if (k === "x" || k === " ") toggle(S.cur);
  else if (k === "Enter") acceptRest();
  else if (k === "u" || (e.ctrlKey && k === "z")) undoLast();
  else if (k === "0") relabel(S.cur, "");
  else if (/^[1-9]$/.test(k) && S.choices[+k - 1]) relabel(S.cur, S.choices[+k - 1].id);
  else if (k === "]" || k === "[") {
    const i = S.labels.findIndex((l) => l.id === S.label) + (k === "]" ? 1 : -1);
    if (S.labels[i]) loadPage(S.labels[i].id);
  } else return;
  e.preventDefault();
});
$("accept").onclick = () => acceptRest();
$("undo").onclick = () => undoLast();
$("picker").onchange = (e) => {
  if (e.target.value !== "") relabel(S.cur, e.target.value === "(none)" ? "" : e.target.value);
  e.target.value = ""; e.target.blur();
};
window.addEventListener("beforeunload", (e) => { if (S.pending) e.preventDefault(); });
(async () => {
  const s = await api("state");
  S.labels = s.labels; S.choices = s.choices;
  $("title").textContent = "weaklabel review — " + s.reviewer;
  $("picker").innerHTML = '<option value="">—</option>' + S.choices.map((c, i) =>
    `<option value="${esc(c.id)}">${i + 1} ${esc(c.name)}</option>`).join("") +
    '<option value="(none)">0 none of the labels</option>';
  const want = decodeURIComponent(location.hash.slice(1));
  const first = S.labels.find((l) => l.id === want) ||
    S.labels.find((l) => l.done < l.total) || S.labels[0];
  if (first) await loadPage(first.id); else document.body.dataset.ready = "1";
})();
</script></body></html>
"""
