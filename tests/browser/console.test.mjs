// The operator console in headless Chromium (Debian's package, driven by playwright-core):
// an admin finds a user created through the official Clerk SDK and revokes their session, which
// the Clerk SDK then reads as revoked; a viewer has no revoke button and a forged POST is
// refused; a POST without the anti-forgery token is refused; failed sign-ins lock the account;
// every page passes axe-core with no serious or critical violation, light and dark; screenshots
// of the overview on a desktop and a phone are saved as artifacts (tests/browser/artifacts/).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { createClerkClient } from "@clerk/backend";
import { installation, serve, launchChromium } from "./harness.mjs";

const require = createRequire(import.meta.url);
const AXE = require.resolve("axe-core/axe.min.js");
const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = process.env.SESSIOND_ARTIFACTS_DIR || join(HERE, "artifacts");
const PASSWORD = "correct horse battery staple";
let server, base, browser, clerk, app, install;


before(async () => {
  install = installation("sessiond-console-");
  const cli = install.cli;
  // The README's three lines: create an operator, start, open the URL.
  cli(["operators", "create", "admin@example.com", "--password-stdin"], PASSWORD + "\n");
  cli(["operators", "create", "viewer@example.com", "--role", "viewer", "--password-stdin"], PASSWORD + "\n");
  cli(["operators", "create", "locked@example.com", "--password-stdin"], PASSWORD + "\n");
  app = JSON.parse(cli(["apps", "create", "Console shop", "--json"]));
  ({ server, base } = await serve(install.env));
  clerk = createClerkClient({ secretKey: app.secret_key, apiUrl: base, publishableKey: app.publishable_key });
  browser = await launchChromium();
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  install?.remove();
});

async function signIn(email, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(base + "/console");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => !u.pathname.endsWith("/sign-in"));
  return { context, page, errors };
}

const appPath = (rest = "") => `${base}/console/apps/${app.id}${rest}`;

test("an admin finds a Clerk user, revokes their session, and the Clerk SDK sees it revoked", async () => {
  const user = await clerk.users.createUser({ emailAddress: ["grace@example.com"], firstName: "Grace" });
  const session = await clerk.sessions.createSession({ userId: user.id });
  assert.equal(session.status, "active");

  const { context, page, errors } = await signIn("admin@example.com");
  await page.goto(appPath());
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByLabel("Find a user").fill("grace@");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: /grace@example\.com/ }).click();
  await page.getByRole("heading", { name: /Grace/ }).waitFor();
  const row = page.getByRole("row").filter({ hasText: session.id });
  await assert.doesNotReject(row.getByText("active").waitFor());
  // The revoke button asks first; accept.
  page.once("dialog", (d) => d.accept());
  await row.getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("heading", { name: /Session/ }).waitFor();
  await page.getByText("revoked", { exact: true }).first().waitFor();

  const after = await clerk.sessions.getSession(session.id);
  assert.equal(after.status, "revoked");
  await page.goto(`${base}/console/audit`);
  await page.getByRole("cell", { name: "session.revoke" }).first().waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});

test("a viewer has no revoke button and a forged revoke is refused", async () => {
  const user = await clerk.users.createUser({ emailAddress: ["ada@example.com"] });
  const session = await clerk.sessions.createSession({ userId: user.id });
  const { context, page } = await signIn("viewer@example.com");
  await page.goto(appPath(`/users/${user.id}`));
  await page.getByRole("heading", { name: "ada@example.com" }).waitFor();
  assert.equal(await page.getByRole("button", { name: /Revoke/ }).count(), 0);
  const csrf = await page.locator("input[name=csrf]").first().inputValue();
  const res = await context.request.post(appPath(`/sessions/${session.id}/revoke`), {
    form: { csrf },
    maxRedirects: 0,
  });
  assert.equal(res.status(), 403);
  assert.equal((await clerk.sessions.getSession(session.id)).status, "active");
  await context.close();
});

test("a POST without the anti-forgery token is refused", async () => {
  const user = await clerk.users.createUser({ emailAddress: ["linus@example.com"] });
  const session = await clerk.sessions.createSession({ userId: user.id });
  const { context } = await signIn("admin@example.com");
  const res = await context.request.post(appPath(`/sessions/${session.id}/revoke`), { form: {}, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.match(await res.text(), /anti-forgery token/);
  assert.equal((await clerk.sessions.getSession(session.id)).status, "active");
  await context.close();
});

test("failed sign-ins lock the account", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  for (let i = 0; i < 5; i++) {
    await page.goto(base + "/console/sign-in");
    await page.getByLabel("Email").fill("locked@example.com");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "not correct" }).waitFor();
  }
  await page.goto(base + "/console/sign-in");
  await page.getByLabel("Email").fill("locked@example.com");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "locked" }).waitFor();
  assert.ok(page.url().endsWith("/console/sign-in"), "still signed out");
  await context.close();
});

async function axe(page, label) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => await window.axe.run(document));
  assert.ok(result.passes.length > 10, `axe ran its rules on ${label}`);
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `axe on ${label}`,
  );
}

test("every page passes axe-core with no serious or critical violation, light and dark", async () => {
  const user = await clerk.users.createUser({ emailAddress: ["barbara@example.com"], firstName: "Barbara" });
  const session = await clerk.sessions.createSession({ userId: user.id });
  const created = await fetch(`${base}/api/v1/sessions/widget`, {
    method: "POST",
    headers: { authorization: `Bearer ${app.secret_key}`, "content-type": "application/json" },
    body: "{}",
  }).then((r) => r.json());
  // The axe script is injected into the page, which the console's policy forbids: only these
  // contexts bypass it.
  for (const colorScheme of ["light", "dark"]) {
    const anon = await browser.newContext({ bypassCSP: true, colorScheme });
    const signInPage = await anon.newPage();
    await signInPage.goto(base + "/console/sign-in");
    await axe(signInPage, `sign-in (${colorScheme})`);
    await anon.close();

    const { context, page } = await signIn("admin@example.com", { bypassCSP: true, colorScheme });
    await page.goto(appPath("/webhooks"));
    if (colorScheme === "light") {
      await page.getByLabel("URL").fill("https://hooks.example.com/sessiond");
      await page.getByRole("button", { name: "Register" }).click();
      await page.getByText("shown only this once").waitFor();
    }
    const endpoint = await page.getByRole("link", { name: "https://hooks.example.com/sessiond" }).getAttribute("href");
    const pages = [
      "/console/apps",
      appPath(),
      appPath("/users"),
      appPath(`/users/${user.id}`),
      appPath("/sessions"),
      appPath(`/sessions/${session.id}`),
      appPath("/verifications"),
      appPath(`/verifications/${created.sessionId || created.id}`),
      appPath("/webhooks"),
      base + endpoint,
      appPath("/settings"),
      "/console/account",
      "/console/audit",
    ];
    for (const p of pages) {
      const url = p.startsWith("http") ? p : base + p;
      const res = await page.goto(url);
      assert.equal(res.status(), 200, url);
      await axe(page, `${url} (${colorScheme})`);
    }
    await context.close();
  }
});

test("the overview fits a desktop and a phone; screenshots are saved", async () => {
  for (const [name, options] of [
    ["desktop", { viewport: { width: 1280, height: 800 } }],
    ["phone", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }],
  ]) {
    const { context, page, errors } = await signIn("admin@example.com", options);
    await page.goto(appPath());
    await page.getByRole("img", { name: "Active sessions, last 24 hours" }).waitFor();
    assert.ok(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      `no horizontal scrolling on the ${name}`,
    );
    await page.screenshot({ path: join(ARTIFACTS, `console-overview-${name}.png`), fullPage: true });
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test("the console is usable by keyboard alone", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + "/console/sign-in");
  // The email field takes focus by itself (autofocus runs at a rendering step, which may come
  // after the load event, so wait for it); then type, Tab, type, Enter.
  await page.locator("#email:focus").waitFor();
  await page.keyboard.type("admin@example.com");
  await page.keyboard.press("Tab");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await page.waitForURL((u) => !u.pathname.endsWith("/sign-in"));
  // The first Tab reaches the skip link, which moves focus to the content.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "main");
  await context.close();
});
