// promshard master UI: plain JavaScript over the JSON API, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { workers: [], active: [], dropped: [], timer: null };
// Rows rendered at most: a browser table of 100k rows is unusable; filters narrow it down.
const MAX_ROWS = 1000;

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem("promshard-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const resp = await fetch(path, { headers });
  if (resp.status === 401) {
    $("#token-panel").hidden = false;
    throw new Error("unauthorized");
  }
  const body = await resp.json();
  if (body.status !== "success") throw new Error(body.error || resp.statusText);
  return body.data;
}

function labels(obj) {
  return '<span class="labels">' + Object.entries(obj || {})
    .map(([k, v]) => `<span>${esc(k)}="${esc(v)}"</span>`).join("") + "</span>";
}

function ago(iso) {
  if (!iso || iso.startsWith("0001-")) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

function duration(secs) {
  if (secs < 120) return `${secs}s`;
  if (secs < 7200) return `${Math.round(secs / 60)}m`;
  return `${Math.round(secs / 3600)}h`;
}

function renderWorkers() {
  const max = Math.max(1, ...state.workers.map((w) => w.series));
  const mean = state.workers.length
    ? state.workers.reduce((a, w) => a + w.series, 0) / state.workers.length : 0;
  $("#worker-count").textContent = `(${state.workers.length})`;
  $("#workers tbody").innerHTML = state.workers.map((w) => {
    const pct = Math.round((100 * w.series) / max);
    const over = mean > 0 && w.series > 1.1 * mean ? " over" : "";
    const st = w.connected ? "connected" : "disconnected";
    return `<tr class="worker-row" data-worker="${esc(w.id)}">
      <td class="worker-id">${esc(w.id)}</td>
      <td><span class="health ${st}">${st}</span></td>
      <td><span class="bar${over}" title="${w.series} series"><span style="width:${pct}%"></span></span>
        ${w.series} <span class="muted">(${w.loadRatio.toFixed(2)}× mean${w.capacitySeries ? `, capacity ${w.capacitySeries}` : ""})</span></td>
      <td>${w.targets} <span class="muted">(${w.targetsUp} up, ${w.targetsDown} down)</span></td>
      <td>${w.ackedGeneration === w.sentGeneration ? "current" : "behind"}
        <span class="muted">${w.ackedGeneration} / ${w.sentGeneration}</span></td>
      <td>${w.connected ? duration(w.connectionAgeSeconds) : "—"}</td></tr>`;
  }).join("");
}

function renderTargets() {
  const job = $("#filter-job").value;
  const health = $("#filter-state").value;
  const text = $("#filter-text").value.toLowerCase();
  const rows = [];
  for (const t of state.active) {
    rows.push({ job: t.scrapePool, instance: t.labels.instance || t.discoveredLabels.__address__,
      health: t.health, owner: t.worker || "", series: t.series, last: ago(t.lastScrape),
      error: t.lastError, labels: t.labels, href: `#/explain?id=${encodeURIComponent(t.id)}` });
  }
  for (const d of state.dropped) {
    const addr = d.discoveredLabels.__address__ || "";
    rows.push({ job: d.scrapePool, instance: addr, health: "dropped", owner: "", series: "",
      last: "", error: d.reason, labels: d.discoveredLabels,
      href: `#/explain?job=${encodeURIComponent(d.scrapePool)}&instance=${encodeURIComponent(addr)}` });
  }
  const shown = rows.filter((r) => (!job || r.job === job) && (!health || r.health === health) &&
    (!text || JSON.stringify(r.labels).toLowerCase().includes(text) ||
      r.instance.toLowerCase().includes(text)));
  $("#target-count").textContent = shown.length > MAX_ROWS
    ? `(first ${MAX_ROWS} of ${shown.length} matching, ${rows.length} in all: filter to narrow)`
    : `(${shown.length} of ${rows.length})`;
  $("#targets tbody").innerHTML = shown.slice(0, MAX_ROWS).map((r) => `<tr class="target-row" data-job="${esc(r.job)}"
      data-instance="${esc(r.instance)}" data-health="${esc(r.health)}" data-owner="${esc(r.owner)}">
    <td>${esc(r.job)}</td><td class="instance">${esc(r.instance)}</td>
    <td><span class="health ${esc(r.health)}">${esc(r.health)}</span></td>
    <td class="owner">${esc(r.owner) || '<span class="muted">—</span>'}</td><td>${esc(r.series)}</td>
    <td>${esc(r.last)}</td><td class="error">${esc(r.error)}</td>
    <td><a class="explain-link" href="${r.href}">explain</a></td></tr>`).join("");
  const jobs = [...new Set(rows.map((r) => r.job))].sort();
  const sel = $("#filter-job");
  const have = [...sel.options].map((o) => o.value).slice(1);
  if (JSON.stringify(have) !== JSON.stringify(jobs)) {
    sel.innerHTML = '<option value="">all</option>' +
      jobs.map((j) => `<option${j === job ? " selected" : ""}>${esc(j)}</option>`).join("");
  }
}

async function loadOverview() {
  const [workers, targets] = await Promise.all([api("/api/v1/workers"), api("/api/v1/targets")]);
  state.workers = workers;
  state.active = targets.activeTargets;
  state.dropped = targets.droppedTargets;
  renderWorkers();
  renderTargets();
}

function kv(rows) {
  return '<table class="kv">' + rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`)
    .join("") + "</table>";
}

function renderExplanation(e) {
  const r = e.relabel || {};
  const steps = (r.steps || []).map((s) => {
    const c = s.changes || {};
    const parts = [];
    for (const [k, v] of Object.entries(c.added || {})) parts.push(`+ ${esc(k)}="${esc(v)}"`);
    for (const k of c.removed || []) parts.push(`− ${esc(k)}`);
    for (const [k, [a, b]] of Object.entries(c.changed || {})) parts.push(`~ ${esc(k)}: "${esc(a)}" → "${esc(b)}"`);
    return `<tr class="step${s.kept ? "" : " dropped"}"><td>${s.index}</td><td>${esc(s.action)}</td>
      <td><code>${esc(JSON.stringify(s.rule))}</code></td>
      <td>${s.kept ? "kept" : "<strong>dropped</strong>"}</td>
      <td class="changes">${parts.join("<br>") || '<span class="muted">no change</span>'}</td></tr>`;
  }).join("");
  const verdict = r.result === "dropped" && r.droppedBy
    ? `<p class="error" id="dropped-by">${esc(r.droppedBy.description)}</p>`
    : r.result === "invalid" ? `<p class="error">Invalid after relabeling: ${esc(r.error)}</p>` : "";
  const o = e.owner;
  const owner = o ? kv([
    ["owner", `<strong id="explain-owner">${esc(o.worker || "none")}</strong>`],
    ["why", esc(o.reason)],
    ["strategy", `${esc(o.strategy)} (ε = ${o.epsilon})`],
    ["owner load", `${o.workerSeries ?? "?"} series; mean ${o.meanSeries.toFixed(0)}, bound ${o.boundSeries.toFixed(0)}`],
    ["preference order", esc((o.preference || []).join(" → "))],
    ["placement key", `<code>${esc(o.placementKey)}</code>`],
  ]) : "";
  const handoffs = (e.handoffs || []).length
    ? e.handoffs.map((h) => esc(JSON.stringify(h))).join("<br>") : '<span class="muted">none recorded</span>';
  return `<article class="explanation" data-state="${esc(e.state)}">
    <h2>${esc(e.job)} / ${esc(e.labels?.instance || e.discoveredLabels.__address__)}
      <span class="health ${esc(e.state === "dropped" ? "dropped" : e.health)}">${esc(e.state === "dropped" ? "dropped" : e.health)}</span></h2>
    ${kv([
      ["id", esc(e.id || "—")],
      ["scrape URL", esc(e.scrapeUrl || "—")],
      ["series", esc(e.series ?? "—")],
      ["last scrape", esc(e.lastScrape ? ago(e.lastScrape) : "—")],
      ["last error", `<span class="error">${esc(e.lastError || e.reason || "")}</span>`],
      ["handoffs", handoffs],
      ["discovered labels", labels(e.discoveredLabels)],
      ["final labels", e.labels ? labels(e.labels) : "—"],
    ])}
    <h2>Placement</h2>${owner || '<p class="muted">not placed (dropped)</p>'}
    <h2>Target relabeling (${r.rules ?? 0} rules)</h2>${verdict}
    <table class="steps"><thead><tr><th>#</th><th>action</th><th>rule</th><th>result</th><th>changes</th></tr></thead>
    <tbody>${steps}</tbody></table>
  </article>`;
}

async function loadExplain(query) {
  const out = await api("/api/v1/targets/explain?" + query);
  $("#explain").innerHTML = out.map(renderExplanation).join("<hr>");
}

async function loadConfig() {
  const [cfg, history] = await Promise.all([api("/api/v1/status/config"), api("/api/v1/config/history")]);
  $("#config-version").textContent = `(version ${cfg.version}, from ${cfg.source})`;
  $("#config-yaml").textContent = cfg.yaml;
  $("#history tbody").innerHTML = history.map((h) => `<tr><td>${h.version}${h.current ? " (running)" : ""}</td>
    <td>${esc(h.time)}</td><td>${esc(h.source)}</td><td><code>${esc(h.digest)}</code></td>
    <td>${esc(h.persistedTo)}</td></tr>`).join("");
}

async function route() {
  clearInterval(state.timer);
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const view = path === "/config" ? "config" : path === "/explain" ? "explain" : "overview";
  for (const v of ["overview", "explain", "config"]) $("#view-" + v).hidden = v !== view;
  document.querySelectorAll("nav a").forEach((a) =>
    a.classList.toggle("active", a.dataset.view === view));
  const load = view === "config" ? loadConfig : view === "explain" ? () => loadExplain(query || "") : loadOverview;
  const tick = async () => {
    try {
      await load();
      $("#status").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.loaded = view;
    } catch (e) {
      $("#status").textContent = "error: " + e.message;
    }
  };
  await tick();
  if (view === "overview") state.timer = setInterval(tick, 5000);
}

for (const id of ["#filter-job", "#filter-state", "#filter-text"]) {
  $(id).addEventListener("input", renderTargets);
}
$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("promshard-token", $("#token-input").value.trim());
  $("#token-panel").hidden = true;
  route();
});
window.addEventListener("hashchange", route);
route();
