// What every browser test sets up: the sessiond binary under test (SESSIOND_BIN) serving a
// fresh data directory, and Debian's headless Chromium.
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BIN = process.env.SESSIOND_BIN;
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

// A fresh installation: its environment, a CLI bound to it, and a way to remove it.
export function installation(prefix) {
  assert.ok(BIN, "SESSIOND_BIN must point at the sessiond binary");
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const env = { PATH: process.env.PATH, SESSIOND_DATA_DIR: join(dir, "data") };
  return {
    env,
    cli: (args, input) => execFileSync(BIN, args, { env, encoding: "utf8", input }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// Starts `sessiond serve` on a free port; resolves with the process and its base URL.
export async function serve(env) {
  const server = spawn(BIN, ["serve", "--listen", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "ignore"] });
  const base = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: server.stdout });
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line);
        if (entry.message === "listening") resolve(`http://${entry.addr}`);
      } catch {}
    });
    server.on("exit", (code) => reject(new Error(`sessiond exited with ${code}`)));
  });
  return { server, base };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
  });
}
