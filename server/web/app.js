// Ward responders' UI: plain JavaScript, no build step. Every text comes
// from i18n/<lang>.json through tr(); the page talks to /api/v1 with the
// session token from POST /api/v1/login (kept in sessionStorage).
"use strict";

const API = "/api/v1";
const LANGS = ["vi", "en"];
const REFRESH_MS = 5000;
const DEADLINE_DAYS = 5;
const SEVERITIES = ["low", "medium", "high", "critical"];
const STATUSES = ["new", "acknowledged", "contained", "resolved", "false_positive"];

const state = {
  lang: LANGS.includes(localStorage.getItem("ward.lang")) ? localStorage.getItem("ward.lang") : "vi",
  texts: {},
  token: sessionStorage.getItem("ward.token"),
  me: null,
  timer: null,
  queue: { sort: "deadline", dir: 1 },
  seen: { agency: new Map(), host: new Map(), rule: new Map() },
};

// ---- text, dates ----------------------------------------------------------

/** The text of `key` in the current language, with {name} filled from vars. */
function tr(key, vars) {
  let s = state.texts[key];
  if (s === undefined) return key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
  return s;
}

async function loadLanguage(lang) {
  const r = await fetch(`/ui/i18n/${lang}.json`);
  state.texts = await r.json();
  state.lang = lang;
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = tr(e.dataset.i18n); });
  document.querySelectorAll("[data-i18n-title]").forEach((e) => { e.title = tr(e.dataset.i18nTitle); });
  document.getElementById("lang").textContent = tr("lang.other_short");
  document.title = tr("app.title");
}

function locale() {
  if (state.lang === "vi") return "vi-VN";
  const nav = navigator.language || "en";
  return nav.startsWith("en") ? nav : "en";
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "medium" }).format(d);
}

function fmtDuration(ms) {
  const m = Math.floor(Math.abs(ms) / 60000);
  const d = Math.floor(m / 1440), hh = Math.floor((m % 1440) / 60), mm = m % 60;
  if (d > 0) return tr("time.dh", { d, h: hh });
  if (hh > 0) return tr("time.hm", { h: hh, m: mm });
  return tr("time.m", { m: mm });
}

const statusLabel = (s) => ({
  new: tr("status.new"), acknowledged: tr("status.acknowledged"), contained: tr("status.contained"),
  resolved: tr("status.resolved"), false_positive: tr("status.false_positive"),
})[s] || s;

const severityLabel = (s) => ({
  low: tr("severity.low"), medium: tr("severity.medium"), high: tr("severity.high"),
  critical: tr("severity.critical"), informational: tr("severity.informational"),
})[s] || s || "—";

const healthLabel = (s) => ({
  online: tr("health.online"), offline: tr("health.offline"), never: tr("health.never"),
})[s] || s;

const kindLabel = (s) => ({
  src_ip: tr("campaign.kind.src_ip"), domain: tr("campaign.kind.domain"), sha256: tr("campaign.kind.sha256"),
})[s] || s;

// ---- DOM ------------------------------------------------------------------

/** An element with attributes (`class`, `on:click`, ...) and children. */
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on:")) e.addEventListener(k.slice(3), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function toast(text, bad) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

const badge = (cls, text) => h("span", { class: "badge " + cls }, text);
const sevBadge = (s) => badge("sev-" + s, severityLabel(s));
const statusBadge = (s) => badge("st-" + s, statusLabel(s));

function table(headers, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, headers)),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, tr("common.empty")))));
}

// ---- API ------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts) {
  const o = opts || {};
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (o.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(API + path, {
    method: o.method || (o.body !== undefined ? "POST" : "GET"),
    headers,
    body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
  });
  if (r.status === 401 && !o.login) {
    logoutLocally();
    throw new ApiFailure(401, tr("login.expired"));
  }
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new ApiFailure(r.status, msg);
  }
  if (o.raw) return r;
  const type = r.headers.get("content-type") || "";
  return type.includes("json") ? r.json() : r.text();
}

/** Downloads an API file with the bearer token (a link cannot carry it). */
async function download(path, fallbackName) {
  try {
    const r = await api(path, { raw: true });
    const disp = r.headers.get("content-disposition") || "";
    const m = disp.match(/filename="([^"]+)"/);
    const url = URL.createObjectURL(await r.blob());
    const a = h("a", { href: url, download: m ? m[1] : fallbackName });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    toast(e.message, true);
  }
}

const canAct = () => state.me && (state.me.role === "admin" || state.me.role === "responder");

// ---- session --------------------------------------------------------------

function logoutLocally() {
  state.token = null;
  state.me = null;
  sessionStorage.removeItem("ward.token");
  document.getElementById("top").hidden = true;
  location.hash = "#/login";
}

function viewLogin() {
  document.getElementById("top").hidden = true;
  const err = h("p", { class: "error", id: "login-error", role: "alert" });
  const name = h("input", { id: "login-name", name: "name", autocomplete: "username", required: true });
  const pass = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "login", id: "login-form" },
    h("h1", {}, tr("app.title")),
    h("p", { class: "muted" }, tr("login.intro")),
    h("label", {}, tr("login.name"), name),
    h("label", {}, tr("login.password"), pass),
    err,
    h("button", { type: "submit", id: "login-submit" }, tr("login.submit")),
    h("button", { type: "button", class: "link", id: "login-lang", "on:click": switchLanguage },
      tr("lang.other")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    try {
      const s = await api("/login", { body: { name: name.value, password: pass.value }, login: true });
      state.token = s.token;
      sessionStorage.setItem("ward.token", s.token);
      await afterLogin();
      location.hash = "#/incidents";
    } catch (e) {
      err.textContent = e.status === 401 ? tr("login.failed") : e.message;
    }
  });
  show(form);
  name.focus();
}

async function afterLogin() {
  state.me = await api("/me");
  document.getElementById("top").hidden = false;
  const who = document.getElementById("whoami");
  who.textContent = tr("nav.whoami", { name: state.me.name, role: roleLabel(state.me.role) });
}

const roleLabel = (r) => ({ admin: tr("role.admin"), responder: tr("role.responder"), viewer: tr("role.viewer") })[r] || r;

async function switchLanguage() {
  const next = state.lang === "vi" ? "en" : "vi";
  localStorage.setItem("ward.lang", next);
  await loadLanguage(next);
  if (state.me) await afterLogin();
  route();
}

// ---- the Circular 20/2017 clock -------------------------------------------

function reportDue(inc) {
  if (inc.report_due) return new Date(inc.report_due);
  return new Date(new Date(inc.created_at).getTime() + DEADLINE_DAYS * 86400000);
}

/** Time since detection against the 5-day reporting deadline. */
function clock(inc) {
  const now = Date.now();
  const since = now - new Date(inc.created_at).getTime();
  const left = reportDue(inc).getTime() - now;
  const cls = left < 0 ? "overdue" : left < 86400000 ? "soon" : "ok";
  return h("span", { class: "clock " + cls, title: tr("clock.due", { at: fmtTime(reportDue(inc).toISOString()) }) },
    tr("clock.since", { d: fmtDuration(since) }), " · ",
    left < 0 ? tr("clock.overdue", { d: fmtDuration(left) }) : tr("clock.left", { d: fmtDuration(left) }));
}

// ---- incident queue -------------------------------------------------------

const FILTERS = ["status", "severity", "agency", "host", "rule", "since", "until", "drill"];

function queueParams() {
  const p = new URLSearchParams(location.hash.split("?")[1] || "");
  const f = {};
  for (const k of FILTERS) if (p.get(k)) f[k] = p.get(k);
  return f;
}

function setQueueParams(f) {
  const p = new URLSearchParams();
  for (const k of FILTERS) if (f[k]) p.set(k, f[k]);
  const q = p.toString();
  history.replaceState(null, "", "#/incidents" + (q ? "?" + q : ""));
}

/** Filters the server may not know yet, applied here too (idempotent). */
function matches(inc, f) {
  if (f.status && inc.status !== f.status) return false;
  if (f.severity && SEVERITIES.indexOf(inc.severity) < SEVERITIES.indexOf(f.severity)) return false;
  if (f.agency && inc.agency !== f.agency) return false;
  if (f.host && inc.host !== f.host) return false;
  if (f.rule && inc.rule_id !== f.rule) return false;
  if (f.since && new Date(inc.last_seen) < new Date(f.since)) return false;
  if (f.until && new Date(inc.first_seen) > new Date(f.until)) return false;
  return true;
}

const SORTS = {
  deadline: (a, b) => reportDue(a) - reportDue(b),
  severity: (a, b) => SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity),
  last_seen: (a, b) => new Date(b.last_seen) - new Date(a.last_seen),
  created: (a, b) => new Date(b.created_at) - new Date(a.created_at),
  id: (a, b) => b.id - a.id,
};

function select(id, value, options) {
  return h("select", { id }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

function viewQueue() {
  const f = queueParams();
  const inputs = {
    status: select("f-status", f.status || "", [["", tr("filter.any_status")], ...STATUSES.map((s) => [s, statusLabel(s)])]),
    severity: select("f-severity", f.severity || "", [["", tr("filter.any_severity")], ...SEVERITIES.map((s) => [s, tr("filter.at_least", { s: severityLabel(s) })])]),
    agency: h("input", { id: "f-agency", list: "dl-agency", value: f.agency || "", placeholder: tr("filter.agency") }),
    host: h("input", { id: "f-host", list: "dl-host", value: f.host || "", placeholder: tr("filter.host") }),
    rule: h("input", { id: "f-rule", list: "dl-rule", value: f.rule || "", placeholder: tr("filter.rule") }),
    since: h("input", { id: "f-since", type: "datetime-local", value: f.since || "", title: tr("filter.since") }),
    until: h("input", { id: "f-until", type: "datetime-local", value: f.until || "", title: tr("filter.until") }),
    drill: select("f-drill", f.drill || "", [["", tr("filter.real")], ["all", tr("filter.all_incl_drills")]]),
  };
  const body = h("div", { id: "queue-body" });
  const stamp = h("span", { class: "muted", id: "queue-stamp" });
  const apply = () => {
    const nf = {};
    for (const [k, e] of Object.entries(inputs)) if (e.value) nf[k] = e.value;
    setQueueParams(nf);
    refresh();
  };
  for (const e of Object.values(inputs)) e.addEventListener("change", apply);
  const refresh = async () => {
    const cur = queueParams();
    const q = new URLSearchParams({ limit: "1000", sort: state.queue.sort === "id" ? "last_seen" : state.queue.sort });
    for (const [k, v] of Object.entries(cur)) {
      q.set(k, k === "since" || k === "until" ? new Date(v).toISOString() : v);
    }
    try {
      const list = (await api("/incidents?" + q)).filter((i) => matches(i, cur));
      rememberValues(lists, list);
      renderQueue(body, list);
      stamp.textContent = tr("queue.updated", { at: fmtTime(new Date().toISOString()), n: list.length });
    } catch (e) {
      body.replaceChildren(h("p", { class: "error" }, e.message));
    }
  };
  const lists = { agency: h("datalist", { id: "dl-agency" }), host: h("datalist", { id: "dl-host" }), rule: h("datalist", { id: "dl-rule" }) };
  show(
    h("h1", {}, tr("queue.title")),
    h("div", { class: "filters", id: "filters" }, Object.values(inputs), Object.values(lists),
      h("button", { type: "button", class: "link", "on:click": () => { setQueueParams({}); viewQueue(); } }, tr("filter.clear"))),
    h("p", {}, stamp),
    body);
  refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

/** Agencies, hosts and rules seen so far, offered as the filters' exact values. */
function rememberValues(lists, incidents) {
  for (const i of incidents) {
    state.seen.agency.set(i.agency, i.agency);
    state.seen.host.set(i.host, i.host);
    state.seen.rule.set(i.rule_id, i.title);
  }
  for (const [k, dl] of Object.entries(lists)) {
    dl.replaceChildren(...[...state.seen[k]].sort().map(([v, label]) => h("option", { value: v }, label === v ? null : label)));
  }
}

function renderQueue(body, list) {
  const s = state.queue;
  list.sort((a, b) => s.dir * (SORTS[s.sort] || SORTS.last_seen)(a, b) || b.id - a.id);
  const col = (key, label) => h("th", {
    class: "sortable" + (s.sort === key ? " sorted" : ""), "data-sort": key,
    "on:click": () => { s.dir = s.sort === key ? -s.dir : 1; s.sort = key; renderQueue(body, list); },
  }, label, s.sort === key ? (s.dir > 0 ? " ▲" : " ▼") : "");
  const rows = list.map((i) => h("tr", { class: "incident-row", "data-id": i.id },
    h("td", {}, h("a", { href: "#/incidents/" + i.id }, "#" + i.id)),
    h("td", {}, sevBadge(i.severity)),
    h("td", {}, statusBadge(i.status)),
    h("td", {}, h("a", { href: "#/incidents/" + i.id, class: "title" }, i.title),
      i.drill ? badge("drill", tr("incident.drill")) : null,
      (i.labels || []).map((l) => badge("label", l))),
    h("td", {}, i.host, h("div", { class: "muted" }, i.agency)),
    h("td", {}, Object.entries(i.entities || {}).slice(0, 2).map(([k, v]) => h("div", { class: "mono" }, k + "=" + v))),
    h("td", { class: "num" }, i.alert_count),
    h("td", {}, fmtTime(i.last_seen)),
    h("td", {}, clock(i))));
  body.replaceChildren(table([
    col("id", tr("col.id")), col("severity", tr("col.severity")), h("th", {}, tr("col.status")),
    h("th", {}, tr("col.title")), h("th", {}, tr("col.host")), h("th", {}, tr("col.entities")),
    h("th", {}, tr("col.alerts")), col("last_seen", tr("col.last_seen")), col("deadline", tr("col.deadline")),
  ], rows, { id: "queue" }));
}

// ---- incident page ----------------------------------------------------------

async function viewIncident(id) {
  let inc;
  try {
    inc = await api("/incidents/" + id);
  } catch (e) {
    show(h("p", { class: "error" }, e.message));
    return;
  }
  const act = async (action, body) => {
    try {
      await api(`/incidents/${id}/${action}`, { body: body || {} });
      toast(tr("action.done"));
      viewIncident(id);
    } catch (e) {
      toast(e.message, true);
    }
  };
  const facts = h("dl", { class: "facts" },
    h("dt", {}, tr("col.status")), h("dd", { id: "inc-status" }, statusBadge(inc.status)),
    h("dt", {}, tr("col.severity")), h("dd", {}, sevBadge(inc.severity)),
    h("dt", {}, tr("col.host")), h("dd", {}, inc.host),
    h("dt", {}, tr("col.agency")), h("dd", {}, inc.agency),
    h("dt", {}, tr("col.rule")), h("dd", { class: "mono" }, inc.rule_id),
    h("dt", {}, tr("col.assignee")), h("dd", { id: "inc-assignee" }, inc.assignee || "—"),
    h("dt", {}, tr("col.first_seen")), h("dd", {}, fmtTime(inc.first_seen)),
    h("dt", {}, tr("col.last_seen")), h("dd", {}, fmtTime(inc.last_seen)),
    h("dt", {}, tr("col.deadline")), h("dd", {}, clock(inc)),
    h("dt", {}, tr("col.tags")), h("dd", {}, (inc.tags || []).map((t) => badge("tag", t))),
    h("dt", {}, tr("col.labels")), h("dd", { id: "inc-labels" }, (inc.labels || []).length
      ? inc.labels.map((l) => h("span", { class: "badge label" }, l,
        canAct() ? h("button", { type: "button", class: "x", title: tr("action.untag"), "on:click": () => act("untag", { text: l }) }, "×") : null))
      : "—"),
    inc.campaign_id ? [h("dt", {}, tr("col.campaign")), h("dd", {}, h("a", { href: "#/campaigns/" + inc.campaign_id }, "#" + inc.campaign_id))] : null,
    inc.merged_into ? [h("dt", {}, tr("col.merged_into")), h("dd", {}, h("a", { href: "#/incidents/" + inc.merged_into }, "#" + inc.merged_into))] : null);

  const packets = inc.alerts.reduce((n, a) => n + (a.packet_count || 0), 0);
  show(
    h("p", {}, h("a", { href: "#/incidents" }, "← " + tr("queue.title"))),
    h("h1", { id: "inc-title" }, "#" + inc.id + " " + inc.title, inc.drill ? badge("drill", tr("incident.drill")) : null),
    h("div", { class: "columns" },
      h("section", {}, facts, canAct() ? actions(inc, act) : null),
      h("section", {}, h("h2", {}, tr("incident.entities")),
        table([h("th", {}, tr("col.name")), h("th", {}, tr("col.value"))],
          Object.entries(inc.entities || {}).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "mono" }, v)))),
        h("h2", {}, tr("incident.packets")),
        h("p", { id: "packet-summary" }, packets
          ? [tr("incident.packet_summary", { n: packets, a: inc.alerts.filter((a) => a.packet_count).length }), " ",
            h("button", { type: "button", id: "pcap", "on:click": () => download(`/incidents/${id}/pcap`, `ward-incident-${id}.pcap`) }, tr("incident.pcap"))]
          : tr("incident.no_packets")))),
    h("h2", {}, tr("incident.alerts", { n: inc.alert_count }),
      canAct() && inc.alerts.length > 1 ? [" ", h("button", { type: "button", id: "split", class: "small", "on:click": () => split(inc) }, tr("action.split"))] : null),
    h("div", { id: "alerts" }, inc.alerts.map((a) => alertCard(a, canAct() && inc.alerts.length > 1))),
    h("h2", {}, tr("incident.timeline")),
    h("ol", { class: "timeline", id: "timeline" }, inc.timeline.map((e) => h("li", {},
      h("span", { class: "muted" }, fmtTime(e.at)), " ", h("strong", {}, e.actor), " ",
      h("span", { class: "kind" }, e.kind), e.detail ? [" — ", h("span", { class: "detail" }, e.detail)] : null))));
}

/** Moves the alerts ticked on the incident page into a new incident, and opens it. */
async function split(inc) {
  const ids = [...document.querySelectorAll("input.split-pick:checked")].map((e) => e.value);
  if (!ids.length) { toast(tr("action.split_none"), true); return; }
  try {
    const made = await api(`/incidents/${inc.id}/split`, { body: { alert_ids: ids } });
    toast(tr("action.split_done", { id: made.id }));
    location.hash = "#/incidents/" + made.id;
  } catch (e) {
    toast(e.message, true);
  }
}

function alertCard(a, pick) {
  return h("article", { class: "alert", "data-alert": a.id },
    h("header", {}, pick ? h("input", { type: "checkbox", class: "split-pick", value: a.id, title: tr("action.split_pick") }) : null,
      sevBadge(a.severity), " ", h("strong", {}, a.title), " ",
      h("span", { class: "muted" }, fmtTime(a.time), " · ", a.host, " · ", a.source),
      a.packet_count ? h("button", { type: "button", class: "link", "on:click": () => download(`/alerts/${encodeURIComponent(a.id)}/pcap`, "alert.pcap") },
        tr("alert.pcap", { n: a.packet_count })) : null),
    Object.keys(a.entities || {}).length ? h("p", { class: "mono" }, Object.entries(a.entities).map(([k, v]) => k + "=" + v).join("  ")) : null,
    h("h3", {}, tr("alert.evidence")),
    h("pre", { class: "evidence" }, (a.evidence || []).join("\n") || tr("common.empty")));
}

function actions(inc, act) {
  const open = inc.status !== "resolved" && inc.status !== "false_positive";
  const btn = (id, label, action, show) => show ? h("button", { type: "button", id, "on:click": () => act(action) }, label) : null;
  const field = (id, label, placeholder, action, make) => {
    const input = h("input", { id: id + "-input", placeholder });
    return h("form", { class: "inline", id: id + "-form", "on:submit": (ev) => { ev.preventDefault(); if (input.value.trim()) act(action, make(input.value.trim())); } },
      input, h("button", { type: "submit", id: id + "-submit" }, label));
  };
  const note = h("textarea", { id: "note-input", rows: 3, placeholder: tr("action.note_placeholder") });
  return h("div", { class: "actions", id: "actions" },
    h("div", { class: "buttons" },
      btn("ack", tr("action.ack"), "ack", inc.status === "new"),
      btn("contain", tr("action.contain"), "contain", open && inc.status !== "contained"),
      btn("resolve", tr("action.resolve"), "resolve", open),
      btn("false-positive", tr("action.false_positive"), "false-positive", open),
      btn("reopen", tr("action.reopen"), "reopen", !open)),
    field("assign", tr("action.assign"), tr("action.assign_placeholder"), "assign", (v) => ({ assignee: v })),
    field("tag", tr("action.tag"), tr("action.tag_placeholder"), "tag", (v) => ({ text: v })),
    field("merge", tr("action.merge"), tr("action.merge_placeholder"), "merge", (v) => ({ into: Number(v) })),
    h("form", { class: "note", id: "note-form", "on:submit": (ev) => { ev.preventDefault(); if (note.value.trim()) act("note", { text: note.value.trim() }); } },
      note, h("button", { type: "submit", id: "note-submit" }, tr("action.note"))));
}

// ---- campaigns ------------------------------------------------------------

function unavailable(e, what) {
  return e.status === 404 ? h("p", { class: "muted", id: "unavailable" }, tr("common.unavailable", { what })) : h("p", { class: "error" }, e.message);
}

async function viewCampaigns() {
  show(h("h1", {}, tr("campaign.title")), h("p", { class: "muted" }, tr("campaign.intro")), h("div", { id: "campaigns" }, tr("common.loading")));
  let list;
  try {
    list = await api("/campaigns");
  } catch (e) {
    document.getElementById("campaigns").replaceChildren(unavailable(e, tr("campaign.title")));
    return;
  }
  document.getElementById("campaigns").replaceChildren(table(
    [tr("col.id"), tr("campaign.kind"), tr("col.value"), tr("col.severity"), tr("campaign.incidents"), tr("campaign.hosts"), tr("campaign.agencies"), tr("col.first_seen"), tr("col.last_seen")].map((x) => h("th", {}, x)),
    list.map((c) => h("tr", {},
      h("td", {}, h("a", { href: "#/campaigns/" + c.id }, "#" + c.id)),
      h("td", {}, kindLabel(c.kind)), h("td", { class: "mono" }, c.value), h("td", {}, sevBadge(c.severity)),
      h("td", { class: "num" }, (c.incident_ids || []).length), h("td", {}, (c.hosts || []).join(", ")),
      h("td", {}, (c.agencies || []).join(", ")), h("td", {}, fmtTime(c.first_seen)), h("td", {}, fmtTime(c.last_seen))))));
}

async function viewCampaign(id) {
  let c;
  try {
    c = await api("/campaigns/" + id);
  } catch (e) {
    show(unavailable(e, tr("campaign.title")));
    return;
  }
  show(
    h("p", {}, h("a", { href: "#/campaigns" }, "← " + tr("campaign.title"))),
    h("h1", {}, tr("campaign.heading", { id: c.id, kind: kindLabel(c.kind), value: c.value })),
    h("p", {}, sevBadge(c.severity), " ", tr("campaign.spread", { hosts: (c.hosts || []).join(", "), agencies: (c.agencies || []).join(", ") })),
    table([tr("col.id"), tr("col.severity"), tr("col.status"), tr("col.title"), tr("col.host"), tr("col.agency"), tr("col.last_seen")].map((x) => h("th", {}, x)),
      (c.incidents || []).map((i) => h("tr", {},
        h("td", {}, h("a", { href: "#/incidents/" + i.id }, "#" + i.id)), h("td", {}, sevBadge(i.severity)), h("td", {}, statusBadge(i.status)),
        h("td", {}, i.title), h("td", {}, i.host), h("td", {}, i.agency), h("td", {}, fmtTime(i.last_seen))))));
}

// ---- agents, rules, drills -------------------------------------------------

async function viewAgents() {
  // The fleet by default; a drill's sandboxed agents only when asked for.
  const drill = new URLSearchParams(location.hash.split("?")[1] || "").get("drill") || "";
  const pick = select("agents-drill", drill, [["", tr("agents.fleet")], ["all", tr("agents.with_drills")]]);
  pick.addEventListener("change", () => { location.hash = "#/agents" + (pick.value ? "?drill=" + encodeURIComponent(pick.value) : ""); });
  show(h("h1", {}, tr("agents.title")), h("div", { class: "filters" }, pick), h("div", { id: "agents" }, tr("common.loading")));
  let list;
  try { list = await api("/agents" + (drill ? "?drill=" + encodeURIComponent(drill) : "")); } catch (e) { document.getElementById("agents").replaceChildren(unavailable(e, tr("agents.title"))); return; }
  const hb = (a, k) => (a.heartbeat && a.heartbeat[k] !== undefined && a.heartbeat[k] !== null ? a.heartbeat[k] : "—");
  const drops = (a) => (a.heartbeat ? (a.heartbeat.dropped_total || 0) + (a.heartbeat.state_evicted_total || 0) : 0) + ((a.gaps && a.gaps.lost) || 0);
  document.getElementById("agents").replaceChildren(table(
    [tr("col.host"), tr("col.agency"), tr("agents.health"), tr("agents.last_seen"), tr("agents.version"), tr("agents.rules"), tr("agents.spool"), tr("agents.drops")].map((x) => h("th", {}, x)),
    list.map((a) => h("tr", { class: "agent-row" },
      h("td", {}, a.hostname, a.drill_id ? [" ", badge("drill", tr("incident.drill"))] : null, h("div", { class: "muted mono" }, a.id),
        a.drill_id ? h("div", { class: "muted mono agent-drill" }, a.drill_id) : null),
      h("td", {}, a.agency),
      h("td", {}, badge("health-" + (a.revoked_at ? "revoked" : a.health), a.revoked_at ? tr("health.revoked") : healthLabel(a.health))),
      h("td", {}, fmtTime(a.last_seen)),
      h("td", {}, a.version),
      h("td", {}, h("span", { class: "mono" }, a.rules_version || "—"), h("div", { class: "muted" }, hb(a, "rules_source")),
        a.heartbeat && a.heartbeat.bundle_error ? h("div", { class: "error" }, a.heartbeat.bundle_error) : null),
      h("td", { class: "num" }, tr("agents.spool_value", { n: hb(a, "spool_entries"), kb: a.heartbeat ? Math.round((a.heartbeat.spool_bytes || 0) / 1024) : 0 })),
      h("td", { class: "num" + (drops(a) ? " bad" : "") }, drops(a))))));
}

async function viewRules() {
  const filter = h("input", { id: "rules-filter", placeholder: tr("rules.filter") });
  const body = h("div", { id: "rules" }, tr("common.loading"));
  const head = h("p", { class: "muted", id: "rules-version" });
  show(h("h1", {}, tr("rules.title")), head, h("div", { class: "filters" }, filter), body);
  let res;
  try { res = await api("/rules"); } catch (e) { body.replaceChildren(unavailable(e, tr("rules.title"))); return; }
  head.textContent = res.version ? tr("rules.bundle", { v: res.version, n: res.rules.length }) : tr("rules.no_bundle");
  const render = () => {
    const q = filter.value.toLowerCase();
    const rows = res.rules
      .filter((r) => !q || [r.id, r.title, r.file, ...(r.tags || [])].join(" ").toLowerCase().includes(q))
      .sort((a, b) => b.hits - a.hits || a.title.localeCompare(b.title))
      .map((r) => h("tr", {},
        h("td", {}, h("strong", {}, r.title), h("div", { class: "muted mono" }, r.id)),
        h("td", {}, r.level ? sevBadge(r.level) : "—"),
        h("td", {}, r.kind === "correlation" ? tr("rules.correlation") : tr("rules.detection")),
        h("td", {}, (r.tags || []).map((t) => badge("tag", t))),
        h("td", { class: "mono" }, r.file),
        h("td", { class: "num" }, r.hits),
        h("td", {}, fmtTime(r.last_hit))));
    body.replaceChildren(table([tr("col.title"), tr("col.level"), tr("rules.kind"), tr("col.tags"), tr("rules.file"), tr("rules.hits"), tr("rules.last_hit")].map((x) => h("th", {}, x)), rows));
  };
  filter.addEventListener("input", render);
  render();
}

async function viewDrills() {
  show(h("h1", {}, tr("drills.title")), h("div", { id: "drills" }, tr("common.loading")));
  let list;
  try { list = await api("/drills"); } catch (e) { document.getElementById("drills").replaceChildren(unavailable(e, tr("drills.title"))); return; }
  const score = (d) => d.scorecard ? tr("drills.score", { d: d.scorecard.detected, e: d.scorecard.expected, f: d.scorecard.false_alarms }) : "—";
  document.getElementById("drills").replaceChildren(table(
    [tr("drills.scenario"), tr("col.status"), tr("drills.started"), tr("drills.by"), tr("drills.incidents"), tr("drills.result")].map((x) => h("th", {}, x)),
    list.map((d) => h("tr", {},
      h("td", {}, h("a", { href: "#/drills/" + encodeURIComponent(d.id) }, d.scenario), h("div", { class: "muted mono" }, d.id)),
      h("td", { class: "drill-status" }, drillStatus(d)),
      h("td", {}, fmtTime(d.started_at)), h("td", {}, d.started_by), h("td", { class: "num" }, d.incidents), h("td", {}, score(d))))));
}

const drillStatusLabel = (s) => ({
  running: tr("drills.running"), finished: tr("drills.finished"), aborted: tr("drills.aborted"), abandoned: tr("drills.abandoned"),
})[s] || s;

/** A drill's state; an abandoned one says when its runner's lease ran out. */
function drillStatus(d) {
  if (d.status === "abandoned") return [badge("st-abandoned", drillStatusLabel(d.status)), " ", h("span", { class: "muted" }, tr("drills.abandoned_at", { at: fmtTime(d.finished_at) }))];
  return drillStatusLabel(d.status);
}

/** Elements the after-action report may hold (what Markdown makes); anything else keeps only its text. */
const REPORT_TAGS = new Set(["H1", "H2", "H3", "H4", "P", "UL", "OL", "LI", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD", "STRONG", "EM", "CODE", "PRE", "BLOCKQUOTE", "HR", "BR", "DEL"]);

/** Rebuilds the server's report HTML as fresh elements and text nodes: no attribute, script or foreign element survives. */
function reportNodes(node) {
  const out = [];
  for (const c of node.childNodes) {
    if (c.nodeType === Node.TEXT_NODE) out.push(document.createTextNode(c.textContent));
    else if (c.nodeType === Node.ELEMENT_NODE) {
      if (REPORT_TAGS.has(c.tagName)) out.push(h(c.tagName.toLowerCase(), {}, reportNodes(c)));
      else out.push(...reportNodes(c));
    }
  }
  return out;
}

async function viewDrill(id) {
  show(h("p", {}, h("a", { href: "#/drills" }, "← " + tr("drills.title"))), h("p", { id: "drill-state" }), h("div", { id: "drill-report" }, tr("common.loading")));
  const box = document.getElementById("drill-report");
  try {
    const path = "/drills/" + encodeURIComponent(id);
    const [d, page] = await Promise.all([api(path), api(path + "/report?format=html")]);
    document.getElementById("drill-state").replaceChildren(tr("col.status"), ": ", drillStatus(d),
      " ", h("button", { type: "button", class: "link", id: "drill-md", "on:click": () => download(path + "/report", id + ".md") }, tr("drills.markdown")));
    const article = new DOMParser().parseFromString(page, "text/html").querySelector("article.drill-report");
    box.replaceChildren(h("article", { class: "report" }, article ? reportNodes(article) : tr("common.empty")));
  } catch (e) {
    box.replaceChildren(unavailable(e, tr("drills.report")));
  }
}

// ---- routing --------------------------------------------------------------

function route() {
  clearInterval(state.timer);
  state.timer = null;
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/incidents";
  if (!state.token) {
    viewLogin();
    return;
  }
  if (path === "/login") {
    location.hash = "#/incidents";
    return;
  }
  const parts = path.split("/").filter(Boolean);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === parts[0]));
  const id = parts[1];
  switch (parts[0]) {
    case "incidents": return id ? viewIncident(id) : viewQueue();
    case "campaigns": return id ? viewCampaign(id) : viewCampaigns();
    case "agents": return viewAgents();
    case "rules": return viewRules();
    case "drills": return id ? viewDrill(decodeURIComponent(id)) : viewDrills();
    default: show(h("p", { class: "error" }, tr("common.no_page")));
  }
}

async function start() {
  await loadLanguage(state.lang);
  document.getElementById("lang").addEventListener("click", switchLanguage);
  document.getElementById("logout").addEventListener("click", async () => {
    try { await api("/logout", { body: {} }); } catch (_) { /* ends locally anyway */ }
    logoutLocally();
  });
  if (state.token) {
    try { await afterLogin(); } catch (_) { logoutLocally(); }
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
