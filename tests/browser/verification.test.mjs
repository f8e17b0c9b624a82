// The hosted verification pages in headless Chromium (Debian's package, driven by
// playwright-core): a widget session completed by keyboard on a phone-sized screen that lands on
// the relying party's redirect URL; a popup-mode session whose result reaches the opener by
// postMessage; an embedded (iframe) session whose result reaches the parent.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { installation, serve, launchChromium } from "./harness.mjs";

let server, rp, rpOrigin, sessiondUrl, secretKey, browser, install;

// The relying party: a page that opens the launch URL in a popup and records the message it
// receives, and a landing page for redirects.
const POPUP_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>RP</title></head><body>
<button id="start">Verify with sessiond</button><pre id="out"></pre>
<script>
  const launch = new URLSearchParams(location.search).get("launch");
  window.addEventListener("message", (e) => {
    window.received = { origin: e.origin, data: e.data };
    document.getElementById("out").textContent = JSON.stringify(window.received);
  });
  document.getElementById("start").addEventListener("click", () => {
    window.open(launch + "&launchMode=popup", "verify", "width=420,height=720");
  });
</script></body></html>`;

const IFRAME_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>RP</title></head><body>
<pre id="out"></pre>
<script>
  window.addEventListener("message", (e) => { window.received = { origin: e.origin, data: e.data }; });
  const frame = document.createElement("iframe");
  frame.title = "Identity verification";
  frame.width = 400; frame.height = 700;
  frame.src = new URLSearchParams(location.search).get("launch") + "&embed=iframe";
  document.body.appendChild(frame);
</script></body></html>`;

function startRp() {
  return new Promise((resolve) => {
    const s = createServer((req, res) => {
      if (req.url.startsWith("/iframe")) {
        res.writeHead(200, { "content-type": "text/html" });
        res.end(IFRAME_PAGE);
      } else if (req.url.startsWith("/popup")) {
        res.writeHead(200, { "content-type": "text/html" });
        res.end(POPUP_PAGE);
      } else {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<!doctype html><title>Landed</title><h1>Back at the relying party</h1>");
      }
    });
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}


before(async () => {
  rp = await startRp();
  rpOrigin = `http://127.0.0.1:${rp.address().port}`;
  install = installation("sessiond-browser-");
  const app = JSON.parse(install.cli(["apps", "create", "browser-rp", "--json"]));
  secretKey = app.secret_key;
  install.cli(["apps", "update", app.id, "--allowed-redirect-origin", rpOrigin]);
  ({ server, base: sessiondUrl } = await serve(install.env));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  rp?.close();
  install?.remove();
});

async function api(method, path, body) {
  const res = await fetch(sessiondUrl + path, {
    method,
    headers: { authorization: `Bearer ${secretKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  return res.json();
}

test("widget session by keyboard on a phone lands on the redirect URL", async () => {
  const created = await api("POST", "/api/v1/sessions/widget", { redirectUrl: `${rpOrigin}/done` });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const failures = [];
  page.on("console", (m) => m.type() === "error" && failures.push(m.text()));
  page.on("pageerror", (e) => failures.push(String(e)));
  await page.goto(created.launchUrl + "&launchMode=redirect");
  await page.getByRole("heading", { name: "Choose how to verify your identity" }).waitFor();
  // Fits the screen: no horizontal scrolling.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));

  // Keyboard only: the first Tab reaches the first provider.
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.getAttribute("value"));
  assert.equal(focused, "trinsic-test-database-lookup");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Enter your details" }).waitFor();
  // Labels are tied to their inputs; the first one has focus.
  assert.equal(await page.evaluate(() => document.activeElement?.id), "f-givenName");
  await page.getByLabel("Family name").waitFor();
  await page.keyboard.type("Keyboard");
  await page.keyboard.press("Tab");
  await page.keyboard.type("User");
  await page.keyboard.press("Tab");
  await page.keyboard.type("123456");
  await page.keyboard.press("Enter");

  await page.waitForURL((u) => u.toString().startsWith(`${rpOrigin}/done`));
  const landed = new URL(page.url());
  assert.equal(landed.searchParams.get("sessionId"), created.sessionId);
  assert.equal(landed.searchParams.get("resultsAccessKey"), created.resultsAccessKey);
  assert.equal(landed.searchParams.get("success"), "true");
  assert.deepEqual(failures, [], "no script errors or CSP violations");

  const results = await api("POST", `/api/v1/sessions/${created.sessionId}/results`, {
    resultsAccessKey: landed.searchParams.get("resultsAccessKey"),
  });
  assert.equal(results.session.success, true);
  assert.equal(results.identityData.person.givenName, "Keyboard");
  await context.close();
});

test("popup mode delivers the result to the opener by postMessage", async () => {
  const created = await api("POST", "/api/v1/sessions/widget", {});
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${rpOrigin}/popup?launch=${encodeURIComponent(created.launchUrl)}`);
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#start")]);
  await popup.getByRole("button", { name: /Test Database Lookup/ }).click();
  await popup.getByLabel("Given name").fill("Popup");
  await popup.getByLabel("Family name").fill("Person");
  await popup.getByLabel(/Identity code/).fill("123456");
  await popup.getByRole("button", { name: "Verify" }).click();
  await popup.getByRole("heading", { name: "Verification complete" }).waitFor();

  const received = await page.waitForFunction(() => window.received).then((h) => h.jsonValue());
  assert.equal(received.origin, new URL(sessiondUrl).origin);
  assert.equal(received.data.success, true);
  assert.equal(received.data.msg, "complete");
  assert.equal(received.data.sessionId, created.sessionId);
  assert.equal(received.data.resultsAccessKey, created.resultsAccessKey);
  await context.close();
});

test("iframe mode delivers the result to the parent by postMessage", async () => {
  const created = await api("POST", "/api/v1/sessions/widget", { providers: ["trinsic-test-sub-providers"] });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${rpOrigin}/iframe?launch=${encodeURIComponent(created.launchUrl)}`);
  const frame = page.frameLocator("iframe");
  // One allowed provider: no provider list; the sub-provider choice comes first.
  await frame.getByRole("button", { name: /Sub-provider B/ }).click();
  await frame.getByRole("heading", { name: "Verification complete" }).waitFor();
  const received = await page.waitForFunction(() => window.received).then((h) => h.jsonValue());
  assert.equal(received.origin, new URL(sessiondUrl).origin);
  assert.equal(received.data.success, true);
  assert.equal(received.data.resultsAccessKey, created.resultsAccessKey);
  await context.close();
});
