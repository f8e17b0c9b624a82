// An offline verifier of sessiond session tokens that also refuses tokens of revoked sessions.
//
// Tokens are checked against the application's public JWKS (fetched once, cached by `jose`);
// the revocation feed (`GET /sessiond/v1/revocations`) keeps a set of sessions that can no
// longer be used, so a token whose `sid` is in it is refused even before its `exp`. The documented
// example in docs/events.md is this file; the Clerk suite runs it (webhooks.test.js).
import { createRemoteJWKSet, jwtVerify } from 'jose';

export function offlineVerifier({ baseUrl, appId, secretKey }) {
  const jwks = createRemoteJWKSet(new URL(`/v1/apps/${appId}/.well-known/jwks.json`, baseUrl));
  const revoked = new Map(); // session id -> the session's expiry (ms): no token outlives it
  let cursor = '';

  // Reads the feed once; with `waitSecs`, holds until something is revoked or the wait ends.
  async function poll(waitSecs = 0) {
    const q = new URLSearchParams({ wait: String(waitSecs) });
    if (cursor) q.set('after', cursor);
    const res = await fetch(`${baseUrl}/sessiond/v1/revocations?${q}`, {
      headers: { authorization: `Bearer ${secretKey}` },
    });
    if (!res.ok) throw new Error(`revocation feed: HTTP ${res.status}`);
    const page = await res.json();
    for (const r of page.data) revoked.set(r.session_id, r.expire_at ?? Infinity);
    cursor = page.next;
    const now = Date.now();
    for (const [sid, until] of revoked) if (until < now) revoked.delete(sid);
    return page;
  }

  // Keeps the set warm until `signal` aborts.
  async function run(signal) {
    while (!signal.aborted) {
      try {
        const page = await poll(25);
        if (!page.has_more && page.data.length === 0) continue;
      } catch {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async function verify(token) {
    const { payload } = await jwtVerify(token, jwks, { algorithms: ['RS256'] });
    if (revoked.has(payload.sid)) throw new Error(`session ${payload.sid} is revoked`);
    return payload;
  }

  return { poll, run, verify, revoked };
}
