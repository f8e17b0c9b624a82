// Spawns sessiond on a fresh data directory and port, with a known secret key.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const SECRET_KEY = 'sk_test_2767b67cbe59c752dbb57793ef34bfaba30b0e3ceb1eab9f51cbc6044600a274';

export async function startServer(env = {}) {
  const bin = process.env.SESSIOND_BIN;
  if (!bin) throw new Error('SESSIOND_BIN must point at the sessiond binary');
  const dir = mkdtempSync(join(tmpdir(), 'sessiond-clerk-js-'));
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0'], {
    env: { PATH: process.env.PATH, SESSIOND_DATA_DIR: join(dir, 'data'), SESSIOND_BOOTSTRAP_SECRET_KEY: SECRET_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sessiond did not start')), 60000);
    child.on('exit', (code) => reject(new Error(`sessiond exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const v = JSON.parse(line);
        if (v.message === 'listening') { clearTimeout(timer); resolve(`http://${v.addr}`); }
      } catch { /* not JSON */ }
    });
  });
  child.stderr.resume();
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
