// nsqadmin web UI: a single-page app over nsqadmin's JSON API (/api/...).
//
// Routes (under the base path): /, /topics, /topics/:topic, /topics/:topic/:channel, /nodes,
// /nodes/:node, /counter, /lookup. Each page is an object with mount(root) (builds the static
// frame, once) and refresh() (fetches and redraws the data regions); the refresh timer calls
// refresh() every few seconds unless paused or a confirmation dialog is open. Depth and message
// rate histories are kept in memory per topic and per channel across page changes; rates come from
// successive polls of message_count.
//
// Everything is built with DOM calls (h()), never innerHTML with data, so names, user agents and
// other strings from the cluster are always shown as text.

const cfg = window.NSQADMIN || {};
const BASE = (cfg.base_path || "").replace(/\/+$/, "");
const HISTORY_POINTS = 90;          // samples kept per topic/channel (7.5 min at 5 s)
const COUNTER_INTERVAL_MS = 2000;   // the counter page polls faster than the others
const TOPIC_DETAIL_LIMIT = 200;
const CHART_MIN_SLOTS = 24;         // a chart with fewer samples leaves room on the left     // Topics page: per-topic stats fetched for at most this many

// ---------------------------------------------------------------------------------------------
// DOM helpers

function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") el.className = v;
        else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : v);
    }
    appendChildren(el, children);
    return el;
}

function appendChildren(el, children) {
    for (const c of children.flat(Infinity)) {
        if (c === undefined || c === null || c === false) continue;
        el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
}

function replace(el, ...children) {
    el.replaceChildren();
    appendChildren(el, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function num(n) {
    if (n === undefined || n === null || Number.isNaN(n)) return "–";
    return Number(n).toLocaleString("en-US");
}

function rateText(r) {
    if (r === undefined || r === null || !Number.isFinite(r)) return "–";
    if (r >= 100) return Math.round(r).toLocaleString("en-US") + "/s";
    return r.toFixed(r >= 10 ? 1 : 2) + "/s";
}

// Nanoseconds to a short human duration ("850µs", "12.3ms", "14.7s", "3m12s").
function nsText(ns) {
    if (ns === undefined || ns === null || !Number.isFinite(ns)) return "–";
    if (ns < 1e3) return ns.toFixed(0) + "ns";
    if (ns < 1e6) return (ns / 1e3).toFixed(1) + "µs";
    if (ns < 1e9) return (ns / 1e6).toFixed(1) + "ms";
    return secondsText(ns / 1e9);
}

function secondsText(sec) {
    if (sec < 60) return sec.toFixed(sec < 10 ? 1 : 0) + "s";
    const d = Math.floor(sec / 86400), hh = Math.floor((sec % 86400) / 3600);
    const m = Math.floor((sec % 3600) / 60), ss = Math.floor(sec % 60);
    if (d) return `${d}d${hh}h`;
    if (hh) return `${hh}h${m}m`;
    return `${m}m${ss}s`;
}

function plural(n, word) { return `${num(n)} ${word}${n === 1 ? "" : "s"}`; }

function quantileLabel(q) {
    const p = q * 100;
    return "p" + (Number.isInteger(p) ? p : p.toFixed(1).replace(/\.0$/, ""));
}

// ---------------------------------------------------------------------------------------------
// URLs and API

function link(path) { return BASE + path; }
// One URL path segment; ':' stays readable ("/nodes/127.0.0.1:4151"), '#' (ephemeral names) and
// anything else special is percent-encoded.
function enc(x) { return encodeURIComponent(x).replace(/%3A/gi, ":"); }
function topicPath(t) { return `/topics/${enc(t)}`; }
function channelPath(t, c) { return `/topics/${enc(t)}/${enc(c)}`; }
function nodePath(n) { return `/nodes/${enc(n)}`; }

class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
        opts.body = JSON.stringify(body);
        opts.headers["Content-Type"] = "application/json";
    }
    const owner = state.page; // a reply that arrives after the user moved on warns no one
    let resp;
    try {
        resp = await fetch(BASE + "/api" + path, opts);
    } catch (e) {
        throw new ApiError(0, `nsqadmin did not answer (${e.message})`);
    }
    const text = await resp.text();
    let data = {};
    if (text) {
        try { data = JSON.parse(text); } catch (e) { data = { message: text }; }
    }
    if (!resp.ok) throw new ApiError(resp.status, data.message || `HTTP ${resp.status}`);
    // Reads raise the warning banner; actions report their own partial failures (runAction).
    if (method === "GET" && owner === state.page && typeof data.message === "string" && data.message.startsWith("WARNING")) warn(data.message);
    return data;
}

// ---------------------------------------------------------------------------------------------
// Banners: warnings from the API (nodes that did not answer), errors and action results.
// Warnings collected during one refresh replace those of the previous refresh.

const banners = { warnings: new Set(), error: null, notice: null };

function warn(message) { banners.warnings.add(message); }

function showError(message) { banners.error = message; drawBanners(); }

function showNotice(message) {
    banners.notice = message;
    drawBanners();
    setTimeout(() => { if (banners.notice === message) { banners.notice = null; drawBanners(); } }, 6000);
}

function drawBanners() {
    const el = document.getElementById("banners");
    const items = [];
    if (banners.error)
        items.push(h("div", { class: "banner error", role: "alert", "data-kind": "error" },
            h("button", { class: "close", title: "Dismiss", onclick: () => { banners.error = null; drawBanners(); } }, "×"),
            h("strong", {}, "Error:"), banners.error));
    for (const w of banners.warnings) {
        const text = w.replace(/^WARNING:\s*/, "");
        items.push(h("div", { class: "banner warning", role: "status", "data-kind": "warning" },
            h("strong", {}, "Some nodes did not answer — the data below may be incomplete."), "\n", text));
    }
    if (banners.notice)
        items.push(h("div", { class: "banner ok", role: "status", "data-kind": "notice" }, banners.notice));
    replace(el, items);
}

// ---------------------------------------------------------------------------------------------
// Histories and charts

const histories = new Map(); // key -> [{t, depth, count}]

// Records one sample (depth and cumulative message count) for key.
function record(key, depth, count, t) {
    let hist = histories.get(key);
    if (!hist) histories.set(key, (hist = []));
    const last = hist[hist.length - 1];
    if (last && t - last.t < 500) { last.depth = depth; last.count = count; return; }
    hist.push({ t, depth, count });
    if (hist.length > HISTORY_POINTS) hist.shift();
}

// Per-interval rates (messages/s) from successive samples; a counter that went down (node
// restarted, topic emptied of channels) contributes no point.
function rates(key) {
    const hist = histories.get(key) || [];
    const out = [];
    for (let i = 1; i < hist.length; i++) {
        const dt = (hist[i].t - hist[i - 1].t) / 1000;
        const dc = hist[i].count - hist[i - 1].count;
        if (dt > 0 && dc >= 0) out.push(dc / dt);
    }
    return out;
}

function depths(key) { return (histories.get(key) || []).map(p => p.depth); }

function currentRate(key) {
    const r = rates(key);
    return r.length ? r[r.length - 1] : null;
}

// An inline SVG sparkline of values (oldest first).
function sparkline(values, { width = 260, height = 48, color = "var(--chart-depth)", title = "" } = {}) {
    const svg = s("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    if (title) { const t = s("title"); t.textContent = title; svg.appendChild(t); }
    svg.appendChild(s("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: "#dde1e6" }));
    if (values.length < 2) {
        const t = s("text", { x: 4, y: height / 2 + 4, fill: "#66707c", "font-size": 11 });
        t.textContent = values.length ? "collecting…" : "no data yet";
        svg.appendChild(t);
        return svg;
    }
    const max = Math.max(...values), min = Math.min(0, ...values);
    const span = max - min || 1;
    const pad = 3;
    const step = width / (Math.max(CHART_MIN_SLOTS, values.length) - 1); // right-aligned, fills as data comes
    const x0 = width - step * (values.length - 1);
    const pts = values.map((v, i) => [x0 + i * step, pad + (height - 2 * pad) * (1 - (v - min) / span)]);
    const line = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1)).join("");
    const area = line + `L${pts[pts.length - 1][0].toFixed(1)},${height}L${pts[0][0].toFixed(1)},${height}Z`;
    svg.appendChild(s("path", { class: "area", d: area, fill: color }));
    svg.appendChild(s("path", { class: "line", d: line, stroke: color }));
    return svg;
}

function chartBox(label, valueText, values, color, kind) {
    const max = values.length ? Math.max(...values) : null;
    return h("div", { class: "chart", "data-chart": kind },
        h("div", { class: "label" }, h("span", {}, label), h("span", {}, max === null ? "" : "max " + (kind === "rate" ? rateText(max) : num(max)))),
        h("div", { class: "value" }, valueText),
        sparkline(values, { color, title: label }));
}

// nsqadmin's own sampled history (GET /api/rates), when it offers one: it covers the time before
// this page was opened. Falls back to the client-side history when the endpoint is missing.
let ratesApi = true;
async function serverSeries(topic, channel) {
    if (!ratesApi) return null;
    const q = "topic=" + enc(topic) + (channel !== undefined ? "&channel=" + enc(channel) : "");
    try {
        const d = await api("GET", "/rates?" + q);
        const samples = d.samples || [];
        if (samples.length < 2) return null;
        return {
            depths: samples.map(x => x.depth),
            rates: samples.filter(x => typeof x.rate === "number").map(x => x.rate),
        };
    } catch (e) {
        if (e.status === 404 || e.status === 405) ratesApi = false;
        return null;
    }
}

// Draws the server's series when it holds at least as many rate points as this page's own.
function chartsFor(key, series) {
    if (series && series.rates.length < rates(key).length) series = null;
    const d = series ? series.depths : depths(key), r = series ? series.rates : rates(key);
    return h("div", { class: "charts" },
        chartBox("Depth", num(d[d.length - 1]), d, "var(--chart-depth)", "depth"),
        chartBox("Message rate", rateText(r[r.length - 1]), r, "var(--chart-rate)", "rate"));
}

function miniSpark(key) {
    return sparkline(rates(key), { width: 90, height: 20, color: "var(--chart-rate)", title: "message rate" });
}

// ---------------------------------------------------------------------------------------------
// Confirmation dialog and actions

let dialogOpen = false;

function confirmDialog(title, text, okLabel = "Confirm") {
    const dlg = document.getElementById("confirm-dialog");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = okLabel;
    dlg.returnValue = "";
    dialogOpen = true;
    return new Promise(resolve => {
        dlg.addEventListener("close", () => { dialogOpen = false; resolve(dlg.returnValue === "ok"); }, { once: true });
        dlg.showModal();
        document.getElementById("confirm-cancel").focus();
    });
}

// Asks, runs the request, reports the outcome and refreshes (or navigates to `after`).
async function runAction({ title, text, ok, method, path, body, done, after }) {
    if (!(await confirmDialog(title, text, ok))) return;
    try {
        const r = await api(method, path, body);
        if (after) navigate(after); // first: a page change clears the previous page's errors
        if (typeof r.message === "string" && r.message.startsWith("WARNING"))
            showError(`${title}: some nodes did not answer, the action may be incomplete. ${r.message.replace(/^WARNING:\s*/, "")}`);
        else
            showNotice(done);
        if (!after) refreshNow();
    } catch (e) {
        showError(`${title} failed: ${e.message}`);
    }
}

function actionButton(label, opts, danger = false) {
    return h("button", {
        type: "button", class: "action" + (danger ? " danger" : ""), "data-action": opts.id || label.toLowerCase(),
        onclick: () => runAction(opts),
    }, label);
}

function isAdmin() { return cfg.is_admin !== false; }

// ---------------------------------------------------------------------------------------------
// Shared table pieces

// The quantiles present in any of the given latency aggregates, highest first.
function quantilesOf(stats) {
    const qs = new Set();
    for (const st of stats) {
        const e2e = st && st.e2e_processing_latency;
        for (const p of (e2e && e2e.percentiles) || []) qs.add(p.quantile);
    }
    return [...qs].sort((a, b) => b - a);
}

function e2eCells(st, qs) {
    const ps = (st.e2e_processing_latency && st.e2e_processing_latency.percentiles) || [];
    return qs.map(q => {
        const p = ps.find(x => x.quantile === q);
        if (!p || !p.count) return h("td", { class: "num" }, "–");
        const v = p.value !== undefined ? p.value : p.average;
        const tip = p.min !== p.max ? `min ${nsText(p.min)}, max ${nsText(p.max)}, avg ${nsText(p.average)}` : "";
        return h("td", { class: "num", title: tip }, nsText(v));
    });
}

function e2eHeads(qs) { return qs.map(q => h("th", { class: "num", title: "end-to-end processing latency" }, "E2E " + quantileLabel(q))); }

function pausedBadge(paused) { return paused ? h("span", { class: "badge paused" }, "paused") : null; }

function table(testid, heads, rows) {
    return h("div", { class: "panel" },
        h("table", { class: "stats", "data-testid": testid },
            h("thead", {}, h("tr", {}, heads)),
            h("tbody", {}, rows)));
}

function th(text, numeric = true, title) { return h("th", { class: numeric ? "num" : null, title }, text); }
function td(v, cls = "num") { return h("td", { class: cls }, v); }

// Sum of the channel counters of one node's TopicStats.
function sumChannels(st) {
    const sum = { in_flight_count: 0, deferred_count: 0, requeue_count: 0, timeout_count: 0, client_count: 0, dead_letter_count: 0 };
    for (const c of st.channels || []) for (const k of Object.keys(sum)) sum[k] += c[k] || 0;
    return sum;
}

// Dead-lettering (nsqd --max-attempts): its column appears only when a node reports the count.
function hasDeadLetter(x) { return x && "dead_letter_count" in x; }
function deadHead(on) { return on ? th("Dead-Lettered") : null; }
function deadCell(on, v) { return on ? td(num(v || 0)) : null; }

// TTL and depth limits (nsqd docs/ttl-and-depth.md): expired/dropped columns appear only when a node
// reports the counts; the topic's configuration is shown when the nodes agree on it.
function hasLimits(x) { return x && "expired_count" in x; }
function limitHeads(on) { return on ? [th("Expired", true, "dropped by their time-to-live"), th("Dropped", true, "evicted at the maximum depth")] : null; }
function limitCells(on, x) { return on ? [td(num(x.expired_count || 0)), td(num(x.dropped_count || 0))] : null; }
function limitsNote(d) {
    if (!hasLimits(d)) return null;
    if (!("ttl" in d)) return h("p", { class: "sub", "data-testid": "topic-limits" }, "Message TTL and maximum depth differ between nodes.");
    const ttl = d.ttl > 0 ? `TTL ${nsText(d.ttl)}` : "no TTL";
    const depth = d.max_depth > 0 ? `max depth ${num(d.max_depth)} (${d.overflow_policy})` : "no maximum depth";
    return h("p", { class: "sub", "data-testid": "topic-limits" }, `Messages: ${ttl}, ${depth}.`);
}

function hostCell(st) {
    return h("td", {}, h("a", { href: link(nodePath(st.node)), "data-nav": true }, st.hostname || st.node),
        st.hostname ? h("div", { class: "sub mono" }, st.node) : null);
}

// ---------------------------------------------------------------------------------------------
// Pages

function pageHead(titleParts, actions) {
    return h("div", { class: "page-head" }, h("h1", { id: "page-title" }, titleParts), actions && actions.length ? h("div", { class: "actions" }, actions) : null);
}

const pages = {};

pages.topics = () => {
    let body;
    return {
        title: "Topics",
        mount(root) {
            body = h("div", {});
            replace(root, pageHead(["Topics"]), body);
        },
        async refresh() {
            const { topics } = await api("GET", "/topics");
            const now = Date.now();
            const shown = topics.slice(0, TOPIC_DETAIL_LIMIT);
            const details = await Promise.all(shown.map(t =>
                api("GET", "/topics/" + enc(t)).catch(e => ({ error: e.message }))));
            const rows = topics.map((t, i) => {
                const d = details[i];
                const a = h("a", { href: link(topicPath(t)), "data-nav": true }, t);
                if (!d) return h("tr", {}, h("td", {}, a), h("td", { colspan: 6, class: "sub" }, ""));
                if (d.error) return h("tr", {}, h("td", {}, a), h("td", { colspan: 6, class: "sub wrap" }, d.error));
                record("topic:" + t, d.depth, d.message_count, now);
                for (const c of d.channels || []) record(`channel:${t}/${c.channel_name}`, c.depth, c.message_count, now);
                return h("tr", { class: d.paused ? "paused" : null, "data-topic": t },
                    h("td", {}, a, " ", pausedBadge(d.paused)),
                    td(num(d.depth)), td(`${num(d.memory_depth)} + ${num(d.backend_depth)}`),
                    td(num(d.message_count)), td(rateText(currentRate("topic:" + t))),
                    td(miniSpark("topic:" + t), ""),
                    td(num((d.channels || []).length)));
            });
            replace(body, topics.length
                ? table("topics", [th("Topic", false), th("Depth"), th("Memory + Disk"), th("Messages"), th("Rate"), th("Rate trend", false), th("Channels")], rows)
                : h("p", { class: "empty" }, "No topics found. Topics appear once an nsqd registers them (or create one on the Lookup page)."));
        },
    };
};

function deleteTopicButton(topic) {
    return actionButton("Delete", { id: "delete", title: "Delete topic", text: `Delete topic "${topic}" and all its channels on every node and lookupd?`, ok: "Delete", method: "DELETE", path: "/topics/" + enc(topic), done: `Topic ${topic} deleted.`, after: "/topics" }, true);
}

pages.topic = (topic) => {
    let head, charts, body, loaded = false;
    return {
        title: `Topic ${topic}`,
        mount(root) {
            head = h("div", {}); charts = h("div", {}); body = h("div", {});
            replace(root, head, charts, body);
        },
        // No node answered for this topic (e.g. it is only registered in nsqlookupd): keep the
        // page usable, so that such a topic can still be deleted.
        failed() {
            if (loaded) return;
            replace(head, pageHead([h("span", { class: "crumb" }, "Topic "), topic], isAdmin() ? [deleteTopicButton(topic)] : []));
            replace(body, h("p", { class: "empty" }, "No nsqd node reported this topic."));
        },
        async refresh() {
            const [d, series] = await Promise.all([api("GET", "/topics/" + enc(topic)), serverSeries(topic)]);
            const now = Date.now();
            record("topic:" + topic, d.depth, d.message_count, now);
            for (const c of d.channels || []) record(`channel:${topic}/${c.channel_name}`, c.depth, c.message_count, now);

            const actions = isAdmin() ? [
                d.paused
                    ? actionButton("Unpause", { id: "unpause", title: "Unpause topic", text: `Unpause topic "${topic}" on every node?`, ok: "Unpause", method: "POST", path: "/topics/" + enc(topic), body: { action: "unpause" }, done: `Topic ${topic} unpaused.` })
                    : actionButton("Pause", { id: "pause", title: "Pause topic", text: `Pause topic "${topic}" on every node? Messages stop flowing to its channels.`, ok: "Pause", method: "POST", path: "/topics/" + enc(topic), body: { action: "pause" }, done: `Topic ${topic} paused.` }),
                actionButton("Empty", { id: "empty", title: "Empty topic", text: `Empty topic "${topic}"? Queued messages not yet sent to channels are deleted.`, ok: "Empty", method: "POST", path: "/topics/" + enc(topic), body: { action: "empty" }, done: `Topic ${topic} emptied.` }, true),
                deleteTopicButton(topic),
            ] : [];
            loaded = true;
            replace(head, pageHead([h("span", { class: "crumb" }, "Topic "), topic, " ", pausedBadge(d.paused)], actions));
            replace(charts, chartsFor("topic:" + topic, series));

            const nodes = d.nodes || [];
            for (const st of nodes) record(`topic:${topic}@${st.node}`, st.depth, st.message_count, now);
            const qs = quantilesOf([d, ...nodes]);
            const dead = hasDeadLetter(d);
            const lim = hasLimits(d);
            const nodeRow = (st, total) => {
                const sum = total ? sumAll(nodes) : sumChannels(st);
                return h("tr", { class: total ? "total" : (st.paused ? "paused" : null), "data-node": total ? null : st.node },
                    total ? h("td", {}, "Total") : hostCell(st),
                    td(num(st.depth)), td(`${num(st.memory_depth)} + ${num(st.backend_depth)}`),
                    td(num(sum.in_flight_count)), td(num(sum.deferred_count)), td(num(sum.requeue_count)), td(num(sum.timeout_count)), deadCell(dead, sum.dead_letter_count), limitCells(lim, st),
                    td(num(st.message_count)), td(rateText(currentRate(total ? "topic:" + topic : `topic:${topic}@${st.node}`))), td(num(sum.client_count)),
                    e2eCells(st, qs),
                    td(total ? "" : pausedBadge(st.paused), ""),
                    isAdmin() ? td(total ? "" : actionButton("Tombstone", { id: "tombstone", title: "Tombstone producer", text: `Tombstone topic "${topic}" on node ${st.node}? The node's topic is deleted and lookupd stops listing it as a producer.`, ok: "Tombstone", method: "DELETE", path: "/nodes/" + enc(st.node), body: { topic }, done: `Topic ${topic} tombstoned on ${st.node}.` }, true), "") : null);
            };
            const heads = [th("nsqd host", false), th("Depth"), th("Memory + Disk"), th("In-Flight"), th("Deferred"), th("Requeued"), th("Timed Out"), deadHead(dead), limitHeads(lim), th("Messages"), th("Rate"), th("Connections"), e2eHeads(qs), th("", false), isAdmin() ? th("", false) : null];

            const chans = d.channels || [];
            const cqs = quantilesOf(chans);
            const chanRows = chans.map(c => h("tr", { class: c.paused ? "paused" : null, "data-channel": c.channel_name },
                h("td", {}, h("a", { href: link(channelPath(topic, c.channel_name)), "data-nav": true }, c.channel_name), " ", pausedBadge(c.paused)),
                td(num(c.depth)), td(`${num(c.memory_depth)} + ${num(c.backend_depth)}`),
                td(num(c.in_flight_count)), td(num(c.deferred_count)), td(num(c.requeue_count)), td(num(c.timeout_count)), deadCell(dead, c.dead_letter_count), limitCells(lim, c),
                td(num(c.message_count)), td(rateText(currentRate(`channel:${topic}/${c.channel_name}`))),
                td(miniSpark(`channel:${topic}/${c.channel_name}`), ""), td(num(c.client_count)), e2eCells(c, cqs)));

            replace(body,
                h("h2", {}, "Topic message queue"),
                limitsNote(d),
                table("topic-nodes", heads, [nodes.map(st => nodeRow(st, false)), nodes.length > 1 ? nodeRow(d, true) : null]),
                h("h2", {}, "Channels"),
                chans.length
                    ? table("channels", [th("Channel", false), th("Depth"), th("Memory + Disk"), th("In-Flight"), th("Deferred"), th("Requeued"), th("Timed Out"), deadHead(dead), limitHeads(lim), th("Messages"), th("Rate"), th("Rate trend", false), th("Connections"), e2eHeads(cqs)], chanRows)
                    : h("p", { class: "empty" }, "This topic has no channels yet."));
        },
    };
};

function sumAll(nodeStats) {
    const sum = { in_flight_count: 0, deferred_count: 0, requeue_count: 0, timeout_count: 0, client_count: 0, dead_letter_count: 0 };
    for (const st of nodeStats) { const x = sumChannels(st); for (const k of Object.keys(sum)) sum[k] += x[k]; }
    return sum;
}

function clientAttrs(cl) {
    const out = [];
    if (cl.tls) out.push(h("span", { class: "badge yes", title: [cl.tls_version, cl.tls_cipher_suite, cl.tls_negotiated_protocol].filter(Boolean).join(" ") }, "TLS"));
    if (cl.deflate) out.push(h("span", { class: "badge yes" }, "deflate"));
    if (cl.snappy) out.push(h("span", { class: "badge yes" }, "snappy"));
    if (cl.sample_rate) out.push(h("span", { class: "badge yes" }, `sampled ${cl.sample_rate}%`));
    if (cl.authed) {
        const id = cl.auth_identity || "authed";
        out.push(cl.auth_identity_url ? h("a", { href: cl.auth_identity_url, class: "badge yes", rel: "noopener" }, id) : h("span", { class: "badge yes" }, id));
    }
    if (cl.topology_region) out.push(h("span", { class: "badge", title: "topology region" }, cl.topology_region));
    if (cl.topology_zone) out.push(h("span", { class: "badge", title: "topology zone" }, cl.topology_zone));
    return out.length ? out.flatMap((x, i) => (i ? [" ", x] : [x])) : "";
}

// Share of a channel's deliveries by consumer locality (nsqd's topology-aware-consumption).
function localityCell(st) {
    const total = st.delivery_msg_count || 0;
    if (!total) return td("–");
    const pct = v => `${(100 * (v || 0) / total).toFixed(1)}%`;
    return h("td", { class: "num locality", title: `zone-local ${num(st.zone_local_msg_count || 0)}, region-local ${num(st.region_local_msg_count || 0)}, global ${num(st.global_msg_count || 0)}` },
        `${pct(st.zone_local_msg_count)} zone · ${pct(st.region_local_msg_count)} region · ${pct(st.global_msg_count)} global`);
}

function clientsTable(clients) {
    const rows = clients.map(cl => h("tr", { "data-client": cl.client_id },
        h("td", {}, cl.hostname || cl.client_id, h("div", { class: "sub mono" }, cl.remote_address)),
        h("td", { class: "wrap" }, cl.user_agent || (cl.version ? `protocol ${cl.version}` : "")),
        h("td", {}, clientAttrs(cl)),
        h("td", {}, h("a", { href: link(nodePath(cl.node)), "data-nav": true, class: "mono" }, cl.node)),
        td(num(cl.in_flight_count)), td(num(cl.ready_count)), td(num(cl.finish_count)), td(num(cl.requeue_count)),
        td(num(cl.message_count)),
        td(cl.connected ? nsText(cl.connected) : "–")));
    return table("clients", [th("Client host", false), th("User-Agent", false), th("Attributes", false), th("nsqd host", false),
        th("In-Flight"), th("Ready count"), th("Finished"), th("Requeued"), th("Messages"), th("Connected")], rows);
}

// ---------------------------------------------------------------------------------------------
// Peek: the next messages of a channel on each node, not consumed (docs/peek.md). Bodies are
// inserted as text nodes (h() never parses HTML); base64 bodies (not UTF-8) are marked.

const PEEK_COUNT = 10;

function peekTime(ns) {
    const d = new Date(Number(ns) / 1e6);
    return Number.isNaN(d.getTime()) ? String(ns) : d.toISOString().replace("T", " ").replace("Z", "");
}

function peekNode(entry) {
    const title = h("h3", { class: "peek-node" }, entry.node);
    if (entry.error !== undefined) {
        const off = /\b404\b/.test(entry.error) && entry.error.includes("NOT_FOUND");
        return [title, h("p", { class: "peek-error", "data-node": entry.node },
            off ? "Peek is not enabled on this node (nsqd --http-peek). " : "", `Could not peek: ${entry.error}`)];
    }
    const p = entry.peek || {};
    const msgs = p.messages || [];
    const note = h("p", { class: "sub" }, `${plural(msgs.length, "message")} shown of depth ${num(p.depth)}; ${num(p.in_flight_count)} in flight, ${num(p.deferred_count)} deferred (not listed).`);
    if (!msgs.length) return [title, note];
    return [title, note, table("peek-" + entry.node, [th("#"), th("ID", false), th("Published", false), th("Attempts"), th("Size"), th("Body", false)],
        msgs.map((m, i) => h("tr", { "data-id": m.id },
            td(num(i + 1)), td(h("code", {}, m.id), ""), td(peekTime(m.timestamp), ""), td(num(m.attempts)), td(num(m.size)),
            h("td", { class: "wrap peek-body" }, m.encoding ? h("span", { class: "badge", title: "the body is not UTF-8 text" }, m.encoding) : null, " ",
                h("code", {}, m.body))))),
    ];
}

async function loadPeek(box, topic, channel) {
    replace(box, h("h2", {}, "Next messages"), h("p", { class: "loading" }, "Peeking…"));
    try {
        const d = await api("GET", `${channelPath(topic, channel)}/peek?n=${PEEK_COUNT}`);
        const nodes = d.nodes || [];
        replace(box, h("h2", {}, `Next messages (not consumed), as of ${new Date().toLocaleTimeString()}`),
            nodes.length ? nodes.map(peekNode) : h("p", { class: "empty" }, "No node has this channel."));
    } catch (e) {
        replace(box, h("h2", {}, "Next messages"), h("p", { class: "peek-error" }, `Peek failed: ${e.message}`));
    }
}

pages.channel = (topic, channel) => {
    let head, charts, body, peekBox;
    const key = `channel:${topic}/${channel}`;
    return {
        title: `Channel ${topic}/${channel}`,
        mount(root) {
            head = h("div", {}); charts = h("div", {}); body = h("div", {});
            peekBox = h("div", { "data-testid": "peek" }); // kept across refreshes: a snapshot
            replace(root, head, charts, body, peekBox);
        },
        async refresh() {
            const [d, series] = await Promise.all([api("GET", channelPath(topic, channel)), serverSeries(topic, channel)]);
            if (d.channel_name === undefined) {
                replace(head, pageHead([h("span", { class: "crumb" }, "Channel "), `${topic} / ${channel}`]));
                replace(charts);
                replace(body, h("p", { class: "empty" }, "This channel was not found on any node."));
                return;
            }
            const now = Date.now();
            record(key, d.depth, d.message_count, now);
            for (const st of d.nodes || []) record(`${key}@${st.node}`, st.depth, st.message_count, now);
            const path = channelPath(topic, channel);
            const actions = isAdmin() ? [
                h("button", { type: "button", class: "action", "data-action": "peek", title: "Show the next messages without consuming them",
                    onclick: () => loadPeek(peekBox, topic, channel) }, "Peek"),
                d.paused
                    ? actionButton("Unpause", { id: "unpause", title: "Unpause channel", text: `Unpause channel "${channel}" of topic "${topic}" on every node?`, ok: "Unpause", method: "POST", path, body: { action: "unpause" }, done: `Channel ${topic}/${channel} unpaused.` })
                    : actionButton("Pause", { id: "pause", title: "Pause channel", text: `Pause channel "${channel}" of topic "${topic}" on every node? Consumers stop receiving messages.`, ok: "Pause", method: "POST", path, body: { action: "pause" }, done: `Channel ${topic}/${channel} paused.` }),
                actionButton("Empty", { id: "empty", title: "Empty channel", text: `Empty channel "${channel}" of topic "${topic}"? Every queued message is deleted.`, ok: "Empty", method: "POST", path, body: { action: "empty" }, done: `Channel ${topic}/${channel} emptied.` }, true),
                actionButton("Delete", { id: "delete", title: "Delete channel", text: `Delete channel "${channel}" of topic "${topic}" on every node and lookupd?`, ok: "Delete", method: "DELETE", path, done: `Channel ${topic}/${channel} deleted.`, after: topicPath(topic) }, true),
            ] : [];
            replace(head, pageHead([h("span", { class: "crumb" }, "Topic "), h("a", { href: link(topicPath(topic)), "data-nav": true }, topic),
                h("span", { class: "crumb" }, " / Channel "), channel, " ", pausedBadge(d.paused)], actions));
            replace(charts, chartsFor(key, series));

            const nodes = d.nodes || [];
            const qs = quantilesOf([d, ...nodes]);
            const locality = (d.delivery_msg_count || 0) > 0;
            const dead = hasDeadLetter(d);
            const lim = hasLimits(d);
            const row = (st, total) => h("tr", { class: total ? "total" : (st.paused ? "paused" : null), "data-node": total ? null : st.node },
                total ? h("td", {}, "Total") : hostCell(st),
                td(num(st.depth)), td(`${num(st.memory_depth)} + ${num(st.backend_depth)}`),
                td(num(st.in_flight_count)), td(num(st.deferred_count)), td(num(st.requeue_count)), td(num(st.timeout_count)), deadCell(dead, st.dead_letter_count), limitCells(lim, st),
                td(num(st.message_count)), td(rateText(currentRate(total ? key : `${key}@${st.node}`))), td(num(st.client_count)),
                locality ? localityCell(st) : null, e2eCells(st, qs), td(total ? "" : pausedBadge(st.paused), ""));
            const clients = d.clients || [];
            replace(body,
                h("h2", {}, "Channel message queue"),
                table("channel-nodes", [th("nsqd host", false), th("Depth"), th("Memory + Disk"), th("In-Flight"), th("Deferred"), th("Requeued"), th("Timed Out"), deadHead(dead), limitHeads(lim), th("Messages"), th("Rate"), th("Connections"),
                    locality ? th("Delivery", true, "deliveries to consumers in nsqd's zone, its region, elsewhere") : null, e2eHeads(qs), th("", false)],
                    [nodes.map(st => row(st, false)), nodes.length > 1 ? row(d, true) : null]),
                h("h2", {}, `Clients (${clients.length})`),
                clients.length ? clientsTable(clients) : h("p", { class: "empty" }, "No clients are connected to this channel."));
        },
    };
};

pages.nodes = () => {
    let body;
    return {
        title: "Nodes",
        mount(root) { body = h("div", {}); replace(root, pageHead(["Nodes"]), body); },
        async refresh() {
            const { nodes } = await api("GET", "/nodes");
            const rows = nodes.map(n => {
                const id = `${n.broadcast_address}:${n.http_port}`;
                const topics = (n.topics || []).map(t => h("span", { class: "chip" + (t.tombstoned ? " tombstoned" : ""), title: t.tombstoned ? "tombstoned on this node" : null, "data-topic": t.topic },
                    h("a", { href: link(topicPath(t.topic)), "data-nav": true }, t.topic),
                    t.tombstoned ? h("span", { class: "badge tomb" }, "tombstoned") : null,
                    !t.tombstoned && isAdmin() ? h("button", { type: "button", title: `Tombstone ${t.topic} on this node`, "data-action": "tombstone",
                        onclick: () => runAction({ title: "Tombstone topic", text: `Tombstone topic "${t.topic}" on node ${id}?`, ok: "Tombstone", method: "DELETE", path: "/nodes/" + enc(id), body: { topic: t.topic }, done: `Topic ${t.topic} tombstoned on ${id}.` }) }, "×") : null));
                const lookupds = n.remote_addresses || [];
                return h("tr", { "data-node": id },
                    h("td", {}, h("a", { href: link(nodePath(id)), "data-nav": true }, n.hostname || id)),
                    td(n.broadcast_address, "mono"), td(n.tcp_port), td(n.http_port),
                    h("td", {}, n.version, " ", n.out_of_date ? h("span", { class: "badge old", title: "older than the newest version in this cluster" }, "out of date") : null),
                    h("td", { class: "num", title: lookupds.join("\n") }, num(lookupds.length)),
                    h("td", { class: "wrap" }, h("div", { class: "chips" }, topics)));
            });
            replace(body, nodes.length
                ? table("nodes", [th("Hostname", false), th("Broadcast address", false), th("TCP port"), th("HTTP port"), th("Version", false), th("Lookupd conns.", true, "lookupds this node is registered with"), th("Topics", false)], rows)
                : h("p", { class: "empty" }, "No nsqd nodes are known."));
        },
    };
};

pages.node = (node) => {
    let head, body;
    return {
        title: `Node ${node}`,
        mount(root) { head = h("div", {}); body = h("div", {}); replace(root, head, body); },
        async refresh() {
            const d = await api("GET", nodePath(node));
            const topics = d.topics || [];
            const channels = topics.flatMap(t => t.channels || []);
            const clients = channels.flatMap(c => (c.clients || []).map(cl => ({ ...cl, _topic: c.topic_name, _channel: c.channel_name })));
            const qs = quantilesOf([...topics, ...channels]);
            const rows = [];
            for (const t of topics) {
                rows.push(h("tr", { class: t.paused ? "paused" : null, "data-topic": t.topic_name },
                    h("td", {}, h("a", { href: link(topicPath(t.topic_name)), "data-nav": true }, h("strong", {}, t.topic_name)), " ", pausedBadge(t.paused)),
                    td(num(t.depth)), td(`${num(t.memory_depth)} + ${num(t.backend_depth)}`),
                    td(""), td(""), td(""), td(""), td(num(t.message_count)), td(num((t.channels || []).length) + " ch.", "num sub"), e2eCells(t, qs)));
                for (const c of t.channels || []) {
                    rows.push(h("tr", { class: c.paused ? "paused" : null, "data-channel": `${t.topic_name}/${c.channel_name}` },
                        h("td", {}, "\u00a0\u00a0\u21b3 ", h("a", { href: link(channelPath(t.topic_name, c.channel_name)), "data-nav": true }, c.channel_name), " ", pausedBadge(c.paused)),
                        td(num(c.depth)), td(`${num(c.memory_depth)} + ${num(c.backend_depth)}`),
                        td(num(c.in_flight_count)), td(num(c.deferred_count)), td(num(c.requeue_count)), td(num(c.timeout_count)),
                        td(num(c.message_count)), td(num(c.client_count)), e2eCells(c, qs)));
                }
            }
            replace(head, pageHead([h("span", { class: "crumb" }, "Node "), node]));
            replace(body,
                h("div", { class: "cards" },
                    h("div", { class: "card" }, h("div", { class: "k" }, "Topics"), h("div", { class: "v" }, num(topics.length))),
                    h("div", { class: "card" }, h("div", { class: "k" }, "Channels"), h("div", { class: "v" }, num(channels.length))),
                    h("div", { class: "card" }, h("div", { class: "k" }, "Messages"), h("div", { class: "v" }, num(d.total_messages))),
                    h("div", { class: "card" }, h("div", { class: "k" }, "Clients"), h("div", { class: "v" }, num(d.total_clients)))),
                h("h2", {}, "Topics and channels"),
                topics.length
                    ? table("node-topics", [th("Topic / channel", false), th("Depth"), th("Memory + Disk"), th("In-Flight"), th("Deferred"), th("Requeued"), th("Timed Out"), th("Messages"), th("Connections"), e2eHeads(qs)], rows)
                    : h("p", { class: "empty" }, "This node has no topics."),
                h("h2", {}, `Clients (${clients.length})`),
                clients.length ? clientsTable(clients) : h("p", { class: "empty" }, "No clients are connected to this node."));
        },
    };
};

pages.counter = () => {
    let body, last = null;
    const samples = [];
    return {
        title: "Counter",
        interval: COUNTER_INTERVAL_MS,
        mount(root) { body = h("div", {}); replace(root, pageHead(["Messages processed"]), body); },
        async refresh() {
            const d = await api("GET", "/counter");
            const stats = Object.values(d.stats || {});
            const total = stats.reduce((acc, x) => acc + (x.message_count || 0), 0);
            const channels = new Set(stats.map(x => `${x.topic_name}/${x.channel_name}`)).size;
            const nodes = new Set(stats.map(x => x.node)).size;
            const now = Date.now();
            let rate = null;
            if (last && now > last.t && total >= last.total) rate = (total - last.total) / ((now - last.t) / 1000);
            if (rate !== null) { samples.push(rate); if (samples.length > HISTORY_POINTS) samples.shift(); }
            last = { t: now, total };
            replace(body,
                h("div", { class: "panel counter-box" },
                    h("div", { class: "total", id: "counter-total" }, num(total)),
                    h("div", { class: "rate" }, `messages processed by ${plural(channels, "channel")} on ${plural(nodes, "node")}`, rate !== null ? ` — ${rateText(rate)}` : "")),
                h("div", { class: "charts", style: "margin-top:14px" }, chartBox("Processing rate", rateText(rate), samples, "var(--chart-rate)", "rate")));
        },
    };
};

pages.lookup = () => {
    let body;
    const create = async (ev) => {
        ev.preventDefault();
        const form = ev.target;
        const topic = form.topic.value.trim(), channel = form.channel.value.trim();
        if (!topic) { showError("Enter a topic name."); return; }
        const what = channel ? `topic "${topic}" and channel "${channel}"` : `topic "${topic}"`;
        await runAction({ title: "Create", text: `Create ${what} on every nsqlookupd${channel ? " and on the topic's nsqd nodes" : ""}?`, ok: "Create",
            method: "POST", path: "/topics", body: channel ? { topic, channel } : { topic }, done: `Created ${what}.` });
        form.reset();
    };
    return {
        title: "Lookup",
        mount(root) {
            body = h("div", {});
            const lookupds = cfg.nsqlookupd_http_addresses || [];
            replace(root, pageHead(["Lookup"]),
                h("h2", {}, "nsqlookupd hosts"),
                lookupds.length ? h("div", { class: "chips" }, lookupds.map(a => h("span", { class: "chip mono" }, a)))
                    : h("p", { class: "empty" }, cfg.template ? "(lookupd addresses are shown when nsqadmin serves this page)" : "nsqadmin is not configured with any nsqlookupd."),
                isAdmin() ? [h("h2", {}, "Create topic / channel"),
                    h("div", { class: "panel" }, h("form", { class: "create", id: "create-form", onsubmit: create },
                        h("label", {}, "Topic", h("input", { name: "topic", id: "create-topic", required: true, pattern: "[.a-zA-Z0-9_\\-]+(#ephemeral)?", maxlength: 64, placeholder: "topic name" })),
                        h("label", {}, "Channel (optional)", h("input", { name: "channel", id: "create-channel", pattern: "[.a-zA-Z0-9_\\-]+(#ephemeral)?", maxlength: 64, placeholder: "channel name" })),
                        h("button", { type: "submit", id: "create-submit" }, "Create")))] : null,
                h("h2", {}, "Topics and channels without producers"),
                body);
        },
        async refresh() {
            const { topics } = await api("GET", "/topics?inactive=true");
            const names = Object.keys(topics || {}).sort();
            replace(body, names.length
                ? table("inactive", [th("Topic", false), th("Channels", false)], names.map(t => h("tr", { "data-topic": t },
                    h("td", {}, h("a", { href: link(topicPath(t)), "data-nav": true }, t)),
                    h("td", { class: "wrap" }, h("div", { class: "chips" }, (topics[t] || []).map(c => h("span", { class: "chip" }, c)))))))
                : h("p", { class: "empty" }, "Every topic registered with nsqlookupd has at least one producer."));
        },
    };
};

// ---------------------------------------------------------------------------------------------
// Router and refresh loop

function route(pathname) {
    let p = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
    const parts = p.split("/").filter(Boolean).map(x => { try { return decodeURIComponent(x); } catch (e) { return x; } });
    if (parts.length === 0) return { section: "topics", page: pages.topics() };
    const [a, b, c] = parts;
    if (a === "topics" && parts.length === 1) return { section: "topics", page: pages.topics() };
    if (a === "topics" && parts.length === 2) return { section: "topics", page: pages.topic(b) };
    if (a === "topics" && parts.length === 3) return { section: "topics", page: pages.channel(b, c) };
    if (a === "nodes" && parts.length === 1) return { section: "nodes", page: pages.nodes() };
    if (a === "nodes" && parts.length === 2) return { section: "nodes", page: pages.node(b) };
    if (a === "counter" && parts.length === 1) return { section: "counter", page: pages.counter() };
    if (a === "lookup" && parts.length === 1) return { section: "lookup", page: pages.lookup() };
    return { section: "", page: { title: "Not found", mount(root) { replace(root, pageHead(["Page not found"]), h("p", {}, h("a", { href: link("/topics"), "data-nav": true }, "Back to topics"))); }, async refresh() {} } };
}

const state = { page: null, timer: null, paused: localStorage.getItem("nsqadmin.paused") === "1", interval: Number(localStorage.getItem("nsqadmin.interval")) || 5000, seq: 0, busy: false };

function navigate(path) {
    history.pushState(null, "", link(path));
    show();
}

function show() {
    const { section, page } = route(location.pathname);
    for (const a of document.querySelectorAll(".mainnav a")) a.classList.toggle("active", a.dataset.section === section);
    document.title = `${page.title} · nsqadmin`;
    banners.error = null;
    banners.warnings.clear();
    drawBanners();
    state.page = page;
    const root = document.getElementById("app");
    page.mount(root);
    refreshNow();
}

async function refreshNow() {
    const page = state.page;
    const seq = ++state.seq;
    clearTimeout(state.timer);
    state.busy = true;
    const warnings = new Set();
    banners.warnings = warnings;
    try {
        await page.refresh();
        if (seq === state.seq && banners.error && banners.error.startsWith("Could not load")) banners.error = null;
        document.getElementById("last-updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    } catch (e) {
        if (seq === state.seq) {
            banners.error = `Could not load ${page.title}: ${e.message}`;
            if (page.failed) page.failed(e);
        }
    } finally {
        state.busy = false;
    }
    if (seq !== state.seq) return;
    drawBanners();
    schedule();
}

function schedule() {
    clearTimeout(state.timer);
    if (state.paused) return;
    const page = state.page;
    state.timer = setTimeout(function tick() {
        if (dialogOpen || document.hidden) { state.timer = setTimeout(tick, 1000); return; }
        if (state.page === page) refreshNow();
    }, (page && page.interval) || state.interval);
}

function drawRefreshControls() {
    const btn = document.getElementById("refresh-toggle");
    btn.textContent = state.paused ? "Resume" : "Pause";
    btn.classList.toggle("paused", state.paused);
    btn.title = state.paused ? "Automatic refresh is paused" : "Pause automatic refresh";
    document.getElementById("refresh-interval").value = String(state.interval);
}

function init() {
    for (const a of document.querySelectorAll("a[data-nav]")) a.setAttribute("href", link(a.getAttribute("href")));
    document.getElementById("footer-version").textContent = cfg.version ? `nsqadmin v${cfg.version}` : "nsqadmin";
    document.addEventListener("click", ev => {
        const a = ev.target.closest && ev.target.closest("a[data-nav]");
        if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
        ev.preventDefault();
        history.pushState(null, "", a.getAttribute("href"));
        show();
    });
    window.addEventListener("popstate", show);
    document.getElementById("refresh-now").addEventListener("click", () => refreshNow());
    document.getElementById("refresh-toggle").addEventListener("click", () => {
        state.paused = !state.paused;
        localStorage.setItem("nsqadmin.paused", state.paused ? "1" : "0");
        drawRefreshControls();
        if (state.paused) clearTimeout(state.timer); else refreshNow();
    });
    document.getElementById("refresh-interval").addEventListener("change", ev => {
        state.interval = Number(ev.target.value) || 5000;
        localStorage.setItem("nsqadmin.interval", String(state.interval));
        schedule();
    });
    drawRefreshControls();
    show();
}

init();
