// Browser test of the nsqadmin web UI: starts a real local cluster (nsqlookupd, two nsqd,
// nsqadmin under a base path) on free loopback ports, publishes to two topics, then drives the UI
// in headless Chromium: every page loads and shows the real topics/channels/nodes, pausing a
// channel from the UI (confirmation accepted) pauses it on both nsqd; empty, delete and tombstone
// actions reach nsqd; Peek shows a channel's next messages (bodies as text) without consuming
// them; creating a topic from the Lookup page reaches nsqlookupd; charts fill from successive
// refreshes; and a node that stops answering raises the warning banner.
// A screenshot of each page is saved in the artefact directory.
//
// Usage: node ui_test.mjs  (environment: NSQLOOKUPD_BIN, NSQD_BIN, NSQADMIN_BIN, ARTIFACT_DIR,
// NPM_DIR = directory whose node_modules holds playwright-core, CHROMIUM = browser binary)
// Prints one line per check and "N passed, N failed"; exits non-zero on any failure, including a
// browser that cannot be launched.

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`environment variable ${name} is not set`);
    return v;
};

const BASE_PATH = "/admin";
const START_TIMEOUT_MS = 20000;
const WAIT_TIMEOUT_MS = 20000;
const WARNING_TIMEOUT_MS = 45000; // nsqadmin's request timeout (5 s) plus a couple of refreshes
const ORDERS_ON_NODE = [5, 3];    // messages published to "orders" on nsqd 0 and 1
const EVENTS_ON_NODE0 = 4;
const ORDERS_CHANNELS = ["audit", "billing"];
const FAST_REFRESH_MS = 2000;     // the UI's shortest refresh interval
const DEFAULT_REFRESH_MS = 5000;
const ADMIN_USER = "alice";
const PUBLISH_TICK_MS = 200;      // extra messages while the charts collect samples
const PEEK_NODE = 0;              // started with --http-peek (the other nsqd is not)
// Bodies carry markup: the Peek view must show it as text.
const orderBody = (node, m) => `<b class="injected">order</b> ${node}-${m}`;

const artifactDir = env("ARTIFACT_DIR");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nsqadmin-browser-"));
fs.mkdirSync(artifactDir, { recursive: true });

let passed = 0, failed = 0;
function ok(name) { passed++; console.log(`ok - ${name}`); }
function fail(name, err) { failed++; console.log(`not ok - ${name}: ${err && err.stack ? err.stack : err}`); }
// A daemon that dies mid-test fails every later check at once (with the end of its log) instead of
// letting each one run into its timeout.
async function check(name, fn) {
    const dead = deadDaemon();
    if (dead) { fail(name, dead); return; }
    try { await fn(); ok(name); } catch (e) { fail(name, deadDaemon() || e); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// ---- processes ----

const procs = [];
const LOG_TAIL_LINES = 15;

function deadDaemon() {
    const d = procs.find(p => p.exited !== null);
    if (!d) return null;
    if (d.reported) return `${d.name} exited (${d.exited})`;
    d.reported = true;
    const log = fs.readFileSync(path.join(artifactDir, `${d.name}.log`), "utf8").trimEnd().split("\n");
    return `${d.name} exited (${d.exited}); last lines of ${d.name}.log:\n    ` + log.slice(-LOG_TAIL_LINES).join("\n    ");
}

// Starts a daemon and resolves with {proc, ports: {TCP, HTTP}} once it logged every expected
// "<KIND>: listening on <addr>" line.
function startDaemon(name, bin, args, kinds) {
    return new Promise((resolve, reject) => {
        const log = fs.openSync(path.join(artifactDir, `${name}.log`), "w");
        const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
        const entry = { name, proc, exited: null, stopping: false };
        procs.push(entry);
        proc.on("exit", (code, sig) => { if (!entry.stopping) entry.exited = code ?? sig; });
        const ports = {};
        let buf = "";
        const timer = setTimeout(() => reject(new Error(`${name} did not start in time; see ${name}.log`)), START_TIMEOUT_MS);
        const onData = (chunk) => {
            fs.writeSync(log, chunk);
            buf += chunk.toString();
            for (const m of buf.matchAll(/(TCP|HTTP|HTTPS): listening on (\S+)/g)) ports[m[1]] = Number(m[2].split(":").pop());
            if (kinds.every(k => ports[k])) { clearTimeout(timer); resolve({ proc, ports }); }
        };
        proc.stdout.on("data", onData);
        proc.stderr.on("data", onData);
        proc.on("exit", (code, sig) => { clearTimeout(timer); reject(new Error(`${name} exited (${code ?? sig}) during start-up; see ${name}.log`)); });
        proc.on("error", (e) => { clearTimeout(timer); reject(e); });
    });
}

const STOP_TIMEOUT_MS = 10000;
async function stopAll() {
    for (const p of procs) p.stopping = true;
    await Promise.all(procs.map(({ proc }) => new Promise(resolve => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const timer = setTimeout(() => { proc.kill("SIGKILL"); }, STOP_TIMEOUT_MS);
        proc.on("exit", () => { clearTimeout(timer); resolve(); });
        try { proc.kill("SIGCONT"); proc.kill("SIGTERM"); } catch (e) { clearTimeout(timer); resolve(); }
    })));
}

async function http(method, port, p, body) {
    const resp = await fetch(`http://127.0.0.1:${port}${p}`, { method, body });
    const text = await resp.text();
    if (!resp.ok) throw new Error(`${method} ${p} -> ${resp.status} ${text}`);
    return text;
}

async function waitFor(what, fn, timeout = WAIT_TIMEOUT_MS) {
    const deadline = Date.now() + timeout;
    let last;
    while (Date.now() < deadline) {
        try { if (await fn()) return; } catch (e) { last = e; }
        await new Promise(r => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}${last ? ": " + last.message : ""}`);
}

async function channelStats(port, topic, channel) {
    const st = JSON.parse(await http("GET", port, `/stats?format=json&topic=${topic}&channel=${channel}`));
    const t = (st.topics || []).find(x => x.topic_name === topic);
    return t && (t.channels || []).find(c => c.channel_name === channel);
}

// ---- main ----

async function main() {
    const lookupd = await startDaemon("nsqlookupd", env("NSQLOOKUPD_BIN"),
        ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", "--broadcast-address=127.0.0.1"], ["TCP", "HTTP"]);
    const nsqd = [];
    for (let i = 0; i < 2; i++) {
        const dataPath = path.join(tmp, `nsqd${i}`);
        fs.mkdirSync(dataPath);
        nsqd.push(await startDaemon(`nsqd${i}`, env("NSQD_BIN"), [
            "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", "--broadcast-address=127.0.0.1",
            `--data-path=${dataPath}`, `--lookupd-tcp-address=127.0.0.1:${lookupd.ports.TCP}`,
            ...(i === PEEK_NODE ? ["--http-peek"] : []),
        ], ["TCP", "HTTP"]));
    }
    const admin = await startDaemon("nsqadmin", env("NSQADMIN_BIN"), [
        "--http-address=127.0.0.1:0", `--lookupd-http-address=127.0.0.1:${lookupd.ports.HTTP}`,
        `--base-path=${BASE_PATH}`,
    ], ["HTTP"]);

    // Channels first, so the published messages reach them.
    for (let i = 0; i < 2; i++) {
        await http("POST", nsqd[i].ports.HTTP, "/topic/create?topic=orders");
        for (const c of ORDERS_CHANNELS) await http("POST", nsqd[i].ports.HTTP, `/channel/create?topic=orders&channel=${c}`);
        for (let m = 0; m < ORDERS_ON_NODE[i]; m++) await http("POST", nsqd[i].ports.HTTP, "/pub?topic=orders", orderBody(i, m));
    }
    for (let m = 0; m < EVENTS_ON_NODE0; m++) await http("POST", nsqd[0].ports.HTTP, "/pub?topic=events", `event ${m}`);
    await waitFor("both producers of orders in nsqlookupd", async () =>
        JSON.parse(await http("GET", lookupd.ports.HTTP, "/lookup?topic=orders")).producers.length === 2);
    await waitFor("events in nsqlookupd", async () =>
        JSON.parse(await http("GET", lookupd.ports.HTTP, "/lookup?topic=events")).producers.length === 1);

    const nodeIds = nsqd.map(n => `127.0.0.1:${n.ports.HTTP}`);
    const ui = `http://127.0.0.1:${admin.ports.HTTP}${BASE_PATH}`;

    // ---- browser ----
    const require = createRequire(path.resolve(env("NPM_DIR"), "package.json"));
    const { chromium } = require("playwright-core");
    // A fresh profile per run (Playwright passes it to Chromium as --user-data-dir).
    const userDataDir = fs.mkdtempSync(path.join(tmp, "chromium-profile-"));
    const browser = await chromium.launchPersistentContext(userDataDir, {
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        headless: true,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        viewport: { width: 1400, height: 900 },
    });
    ok("chromium launched");
    const page = browser.pages()[0] || await browser.newPage();
    const pageErrors = [];
    page.on("pageerror", e => pageErrors.push(e.message));
    // HTTP errors the UI handles (e.g. 502 for a topic without producers) are logged by Chromium
    // as "Failed to load resource"; anything else logged as an error is a script problem.
    page.on("console", m => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text()); });
    page.setDefaultTimeout(WAIT_TIMEOUT_MS);
    const shot = (name) => page.screenshot({ path: path.join(artifactDir, `${name}.png`), fullPage: true });
    const texts = async (sel) => (await page.locator(sel).allTextContents()).map(s => s.trim());

    await check("Topics page lists both topics with their depth", async () => {
        await page.goto(`${ui}/topics`);
        await page.locator('table[data-testid=topics] tr[data-topic="orders"]').waitFor();
        await page.locator('table[data-testid=topics] tr[data-topic="events"]').waitFor();
        const row = await page.locator('tr[data-topic="events"]').textContent();
        assert(row.includes(String(EVENTS_ON_NODE0)), `events row lacks its depth: ${row}`);
        await shot("topics");
    });

    await check("Topic page shows both nodes and both channels", async () => {
        await page.click('table[data-testid=topics] a:text-is("orders")');
        await page.waitForURL(`${ui}/topics/orders`);
        await page.locator("table[data-testid=channels] tr[data-channel]").first().waitFor();
        const chans = await page.locator("table[data-testid=channels] tr[data-channel]").evaluateAll(rs => rs.map(r => r.dataset.channel));
        assert(JSON.stringify(chans) === JSON.stringify(ORDERS_CHANNELS), `channels: ${chans}`);
        await waitFor("two node rows", async () => (await page.locator("table[data-testid=topic-nodes] tr[data-node]").count()) === 2);
        const nodes = (await page.locator("table[data-testid=topic-nodes] tr[data-node]").evaluateAll(rs => rs.map(r => r.dataset.node))).sort();
        assert(JSON.stringify(nodes) === JSON.stringify([...nodeIds].sort()), `nodes: ${nodes}`);
        await page.locator('[data-chart="depth"] svg').waitFor();
        await shot("topic");
    });

    await check("Channel page shows per-node rows and message counts", async () => {
        await page.click('table[data-testid=channels] a:text-is("billing")');
        await page.waitForURL(`${ui}/topics/orders/billing`);
        await waitFor("two node rows", async () => (await page.locator("table[data-testid=channel-nodes] tr[data-node]").count()) === 2);
        const total = await page.locator("table[data-testid=channel-nodes] tr.total").textContent();
        const sum = ORDERS_ON_NODE.reduce((a, b) => a + b, 0);
        assert(total.includes(String(sum)), `total row lacks ${sum}: ${total}`);
        await shot("channel");
    });

    await check("Cancelling the pause dialog changes nothing", async () => {
        await page.click('button[data-action="pause"]');
        await page.locator("#confirm-dialog[open]").waitFor();
        await page.click("#confirm-cancel");
        await page.locator("#confirm-dialog[open]").waitFor({ state: "detached" }).catch(() => {});
        for (const n of nsqd) {
            const c = await channelStats(n.ports.HTTP, "orders", "billing");
            assert(c && c.paused === false, "channel paused although the dialog was cancelled");
        }
    });

    await check("Pausing a channel from the UI pauses it on every nsqd", async () => {
        await page.click('button[data-action="pause"]');
        await page.locator("#confirm-dialog[open]").waitFor();
        const text = await page.locator("#confirm-text").textContent();
        assert(text.includes("billing"), `dialog text: ${text}`);
        await shot("confirm-dialog");
        await page.click("#confirm-ok");
        for (const n of nsqd)
            await waitFor(`paused=true on nsqd :${n.ports.HTTP}`, async () => (await channelStats(n.ports.HTTP, "orders", "billing")).paused === true);
        const other = await channelStats(nsqd[0].ports.HTTP, "orders", "audit");
        assert(other.paused === false, "audit was paused too");
        await page.locator("#page-title .badge.paused").waitFor();
        await page.locator('button[data-action="unpause"]').waitFor();
        await shot("channel-paused");
    });

    await check("Peek lists a node's next messages as text, and the other node's error", async () => {
        const depth = (await channelStats(nsqd[PEEK_NODE].ports.HTTP, "orders", "billing")).depth;
        await page.click('button[data-action="peek"]');
        const rows = page.locator(`[data-testid=peek] table[data-testid="peek-${nodeIds[PEEK_NODE]}"] tr[data-id]`);
        await waitFor("peeked rows", async () => (await rows.count()) === ORDERS_ON_NODE[PEEK_NODE]);
        const bodies = (await rows.locator("td.peek-body").allTextContents()).map(t => t.trim());
        for (let m = 0; m < ORDERS_ON_NODE[PEEK_NODE]; m++)
            assert(bodies[m] === orderBody(PEEK_NODE, m), `body ${m}: ${bodies[m]}`);
        assert((await page.locator("[data-testid=peek] b.injected").count()) === 0, "a body was inserted as HTML");
        const other = nodeIds[1 - PEEK_NODE];
        await page.locator(`[data-testid=peek] .peek-error[data-node="${other}"]`).waitFor();
        const after = await channelStats(nsqd[PEEK_NODE].ports.HTTP, "orders", "billing");
        assert(after.depth === depth && after.in_flight_count === 0, `peek changed the channel: ${JSON.stringify(after)}`);
        await shot("channel-peek");
    });

    await check("Nodes page lists both nsqd with their topics", async () => {
        await page.click('nav a:text-is("Nodes")');
        await page.waitForURL(`${ui}/nodes`);
        for (const id of nodeIds) await page.locator(`table[data-testid=nodes] tr[data-node="${id}"]`).waitFor();
        const row0 = page.locator(`tr[data-node="${nodeIds[0]}"]`);
        await row0.locator('.chip[data-topic="orders"]').waitFor();
        await row0.locator('.chip[data-topic="events"]').waitFor();
        await shot("nodes");
    });

    await check("Node page shows the node's topics and channels", async () => {
        await page.click(`tr[data-node="${nodeIds[0]}"] td:first-child a`);
        await page.waitForURL(`${ui}/nodes/${nodeIds[0]}`);
        await page.locator('table[data-testid=node-topics] tr[data-topic="orders"]').waitFor();
        await page.locator('table[data-testid=node-topics] tr[data-channel="orders/billing"]').waitFor();
        await page.locator('table[data-testid=node-topics] tr[data-topic="events"]').waitFor();
        await shot("node");
    });

    await check("Counter page shows the running total", async () => {
        await page.goto(`${ui}/counter`);
        const expected = ORDERS_ON_NODE.reduce((a, b) => a + b, 0) * ORDERS_CHANNELS.length;
        await waitFor(`counter ${expected}`, async () => (await page.locator("#counter-total").textContent()).replace(/,/g, "") === String(expected));
        await shot("counter");
    });

    await check("Lookup page creates a topic and channel in nsqlookupd", async () => {
        await page.goto(`${ui}/lookup`);
        const hosts = await texts(".chip.mono");
        assert(hosts.includes(`127.0.0.1:${lookupd.ports.HTTP}`), `lookupd hosts: ${hosts}`);
        await page.fill("#create-topic", "created_topic");
        await page.fill("#create-channel", "created_channel");
        await page.click("#create-submit");
        await page.locator("#confirm-dialog[open]").waitFor();
        await page.click("#confirm-ok");
        await waitFor("created_topic in nsqlookupd", async () =>
            JSON.parse(await http("GET", lookupd.ports.HTTP, "/channels?topic=created_topic")).channels.includes("created_channel"));
        await page.locator('table[data-testid=inactive] tr[data-topic="created_topic"]').waitFor();
        await shot("lookup");
    });

    await check("A topic known only to nsqlookupd can be deleted from its page", async () => {
        await page.goto(`${ui}/topics/created_topic`);
        await page.locator(".banner.error").waitFor();
        await page.click('button[data-action="delete"]');
        await page.locator("#confirm-dialog[open]").waitFor();
        await page.click("#confirm-ok");
        await page.waitForURL(`${ui}/topics`);
        await waitFor("created_topic gone from nsqlookupd", async () =>
            !JSON.parse(await http("GET", lookupd.ports.HTTP, "/topics")).topics.includes("created_topic"));
    });

    await check("Charts draw depth and message rate from successive refreshes", async () => {
        await page.goto(`${ui}/topics/events`);
        await page.selectOption("#refresh-interval", String(FAST_REFRESH_MS));
        const publisher = setInterval(() => {
            http("POST", nsqd[0].ports.HTTP, "/pub?topic=events", "chart tick").catch(() => {});
        }, PUBLISH_TICK_MS);
        try {
            await page.locator('[data-chart="rate"] svg path.line').waitFor();
            await page.locator('[data-chart="depth"] svg path.line').waitFor();
            const rate = await page.locator('[data-chart="rate"] .value').textContent();
            assert(/\/s$/.test(rate), `rate value: ${rate}`);
        } finally {
            clearInterval(publisher);
        }
        await shot("topic-charts");
    });

    await check("Automatic refresh can be paused and resumed", async () => {
        await page.click("#refresh-toggle");
        assert((await page.locator("#refresh-toggle").textContent()) === "Resume", "toggle label");
        const before = await page.locator("#last-updated").textContent();
        await new Promise(r => setTimeout(r, FAST_REFRESH_MS * 2));
        assert((await page.locator("#last-updated").textContent()) === before, "page refreshed while paused");
        await page.click("#refresh-toggle");
        await waitFor("a refresh after resuming", async () => (await page.locator("#last-updated").textContent()) !== before);
        await page.selectOption("#refresh-interval", String(DEFAULT_REFRESH_MS));
    });

    await check("Emptying a channel from the UI empties it on every nsqd", async () => {
        await page.goto(`${ui}/topics/orders/billing`);
        await page.click('button[data-action="empty"]');
        await page.locator("#confirm-dialog[open]").waitFor();
        await page.click("#confirm-ok");
        for (const n of nsqd)
            await waitFor(`billing empty on nsqd :${n.ports.HTTP}`, async () => (await channelStats(n.ports.HTTP, "orders", "billing")).depth === 0);
    });

    await check("Deleting a channel from the UI deletes it on every nsqd", async () => {
        await page.goto(`${ui}/topics/orders/audit`);
        await page.click('button[data-action="delete"]');
        await page.locator("#confirm-dialog[open]").waitFor();
        await page.click("#confirm-ok");
        await page.waitForURL(`${ui}/topics/orders`);
        for (const n of nsqd)
            await waitFor(`audit gone from nsqd :${n.ports.HTTP}`, async () => (await channelStats(n.ports.HTTP, "orders", "audit")) === undefined);
        await page.locator('table[data-testid=channels] tr[data-channel="audit"]').waitFor({ state: "detached" });
    });

    await check("Tombstoning a topic on a node from the Nodes page removes it there", async () => {
        await page.goto(`${ui}/nodes`);
        await page.click(`tr[data-node="${nodeIds[0]}"] .chip[data-topic="events"] button[data-action="tombstone"]`);
        await page.locator("#confirm-dialog[open]").waitFor();
        await page.click("#confirm-ok");
        await waitFor("events gone from nsqd 0", async () => {
            const st = JSON.parse(await http("GET", nsqd[0].ports.HTTP, "/stats?format=json"));
            return !(st.topics || []).some(t => t.topic_name === "events");
        });
    });

    await check("With --admin-user, actions show only for a listed user", async () => {
        const restricted = await startDaemon("nsqadmin-acl", env("NSQADMIN_BIN"), [
            "--http-address=127.0.0.1:0", `--lookupd-http-address=127.0.0.1:${lookupd.ports.HTTP}`,
            `--admin-user=${ADMIN_USER}`,
        ], ["HTTP"]);
        const other = await browser.newPage();
        try {
            await other.goto(`http://127.0.0.1:${restricted.ports.HTTP}/topics/orders`);
            await other.locator("table[data-testid=channels]").waitFor();
            assert((await other.locator("button[data-action]").count()) === 0, "actions shown to a non-admin");
            await other.setExtraHTTPHeaders({ "X-Forwarded-User": ADMIN_USER });
            await other.reload();
            await other.locator('button[data-action="delete"]').first().waitFor();
        } finally {
            await other.close();
        }
    });

    await check("A node that stops answering raises the warning banner", async () => {
        await page.goto(`${ui}/topics/orders`);
        await page.locator("table[data-testid=channels]").waitFor();
        nsqd[1].proc.kill("SIGSTOP");
        try {
            await page.locator(".banner.warning").waitFor({ timeout: WARNING_TIMEOUT_MS });
            const text = await page.locator(".banner.warning").textContent();
            assert(text.includes(String(nsqd[1].ports.HTTP)), `banner does not name the node: ${text}`);
            await shot("warning-banner");
        } finally {
            nsqd[1].proc.kill("SIGCONT");
        }
    });

    await check("no script errors in the page", async () => {
        assert(pageErrors.length === 0, pageErrors.join("\n"));
    });

    await browser.close();
}

try {
    await main();
} catch (e) {
    fail("setup", e);
} finally {
    await stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
}
// Sanitizer builds: whatever the daemons reported while serving the UI counts as a failure.
await check("daemons reported no sanitizer errors", async () => {
    for (const { name } of procs) {
        const log = fs.readFileSync(path.join(artifactDir, `${name}.log`), "utf8");
        const m = log.match(/^.*(ERROR: (Address|Leak|Thread)Sanitizer|runtime error:).*$/m);
        assert(!m, `${name}.log: ${m && m[0]}`);
    }
});
console.log(`screenshots and logs: ${artifactDir}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
