// Events from sessiond, checked by the receivers users run: `verifyWebhook` of @clerk/backend and
// the `standardwebhooks` package; and the revocation feed with tokens verified offline.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createClerkClient, verifyToken } from '@clerk/backend';
import { verifyWebhook } from '@clerk/backend/webhooks';
import { Webhook } from 'standardwebhooks';
import { SECRET_KEY, startServer } from './server.js';
import { offlineVerifier } from './examples/offline-verifier.mjs';

let server;
let clerk;
let app;
let receiver;

// A local receiver: records every delivery per path and answers from a per-path script
// (default 204).
function startReceiver() {
  const got = new Map();
  const script = new Map();
  const waiters = [];
  const srv = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const list = got.get(req.url) ?? [];
      list.push({ headers: req.headers, body });
      got.set(req.url, list);
      const next = (script.get(req.url) ?? []).shift() ?? 204;
      res.writeHead(next, { 'content-type': 'text/plain' });
      res.end(next === 204 ? undefined : `status ${next}`);
      for (const w of waiters.splice(0)) w();
    });
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const base = `http://127.0.0.1:${srv.address().port}`;
      resolve({
        base,
        got,
        script,
        async waitFor(path, n, ms = 15000) {
          const deadline = Date.now() + ms;
          while ((got.get(path)?.length ?? 0) < n) {
            if (Date.now() > deadline) throw new Error(`${path}: ${got.get(path)?.length ?? 0} of ${n} deliveries`);
            await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
          }
          return got.get(path);
        },
        close: () => new Promise((r) => srv.close(r)),
      });
    });
  });
}

async function api(method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${SECRET_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function asRequest(d, body = d.body) {
  const headers = new Headers();
  for (const [k, v] of Object.entries(d.headers)) headers.set(k, v);
  return new Request('http://receiver.test/hook', { method: 'POST', headers, body });
}

before(async () => {
  receiver = await startReceiver();
  server = await startServer({ SESSIOND_WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', SESSIOND_WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s' });
  app = (await api('GET', '/sessiond/v1/application')).body;
  clerk = createClerkClient({ secretKey: SECRET_KEY, apiUrl: server.url, publishableKey: app.publishable_key });
});
after(async () => { await server?.stop(); await receiver?.close(); });

describe('webhooks and the revocation feed', () => {
  test('deliveries pass verifyWebhook and standardwebhooks, in Clerk\'s shapes', async () => {
    const ep = await api('POST', '/sessiond/v1/webhooks', {
      url: `${receiver.base}/clerk`, event_types: ['user.created', 'session.created', 'session.revoked'],
    });
    assert.equal(ep.status, 201);
    assert.match(ep.body.secret, /^whsec_/);
    const listed = await api('GET', `/sessiond/v1/webhooks/${ep.body.id}`);
    assert.equal(listed.body.secret, undefined, 'the secret is shown once');

    const user = await clerk.users.createUser({ emailAddress: ['hook@example.com'], firstName: 'Hook' });
    const session = await clerk.sessions.createSession({ userId: user.id });
    await clerk.sessions.revokeSession(session.id);
    const deliveries = await receiver.waitFor('/clerk', 3);

    const events = [];
    for (const d of deliveries) {
      const evt = await verifyWebhook(asRequest(d), { signingSecret: ep.body.secret });
      new Webhook(ep.body.secret).verify(d.body, d.headers); // throws if the signature is wrong
      assert.equal(d.headers['webhook-id'], d.headers['svix-id']);
      assert.equal(evt.object, 'event');
      assert.equal(evt.instance_id, app.id);
      assert.ok(evt.timestamp > 1e12, 'milliseconds');
      events.push(evt);
    }
    const byType = Object.fromEntries(events.map((e) => [e.type, e]));
    assert.deepEqual(Object.keys(byType).sort(), ['session.created', 'session.revoked', 'user.created']);
    assert.equal(byType['user.created'].data.id, user.id);
    assert.equal(byType['user.created'].data.first_name, 'Hook');
    assert.equal(byType['user.created'].data.email_addresses[0].email_address, 'hook@example.com');
    assert.equal(byType['session.created'].data.id, session.id);
    assert.equal(byType['session.created'].data.status, 'active');
    assert.equal(byType['session.created'].data.user.id, user.id);
    assert.equal(byType['session.revoked'].data.status, 'revoked');
    assert.equal(byType['session.revoked'].data.object, 'session');

    // A tampered body, a wrong secret or an old timestamp is refused by both receivers.
    const d = deliveries[0];
    await assert.rejects(verifyWebhook(asRequest(d, d.body.replace('"event"', '"evil"')), { signingSecret: ep.body.secret }));
    await assert.rejects(verifyWebhook(asRequest(d), { signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }));
    assert.throws(() => new Webhook(ep.body.secret).verify(d.body, { ...d.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) }));

    // Each delivery is listed with its one successful attempt.
    // (The receiver answers before sessiond records the answer: wait for the record.)
    let dl;
    for (let i = 0; i < 50; i++) {
      dl = await api('GET', `/sessiond/v1/webhooks/${ep.body.id}/deliveries`);
      if (dl.body.data.length === 3 && dl.body.data.every((x) => x.state === 'succeeded')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(dl.body.data.length, 3);
    assert.ok(dl.body.data.every((x) => x.state === 'succeeded' && x.attempts === 1 && x.last_status === 204));
    await api('DELETE', `/sessiond/v1/webhooks/${ep.body.id}`);
  });

  test('a receiver that fails twice gets the same event a third time, and the attempts are recorded', async () => {
    const ep = await api('POST', '/sessiond/v1/webhooks', { url: `${receiver.base}/flaky`, event_types: ['user.created'] });
    receiver.script.set('/flaky', [500, 503]);
    const user = await clerk.users.createUser({ firstName: 'Flaky' });
    const got = await receiver.waitFor('/flaky', 3);
    assert.equal(new Set(got.map((d) => d.headers['webhook-id'])).size, 1, 'one event, three attempts');
    for (const d of got) await verifyWebhook(asRequest(d), { signingSecret: ep.body.secret });
    assert.equal(JSON.parse(got[2].body).data.id, user.id);
    let attempts;
    for (let i = 0; i < 50; i++) {
      attempts = await api('GET', `/sessiond/v1/webhooks/${ep.body.id}/attempts`);
      if (attempts.body.data.length === 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(attempts.body.data.map((a) => [a.attempt, a.response_code, a.succeeded]), [[3, 204, true], [2, 503, false], [1, 500, false]]);
    assert.equal(attempts.body.data[1].response_body, 'status 503');

    // Replaying the event sends it once more, under the same id.
    const replay = await api('POST', `/sessiond/v1/webhooks/${ep.body.id}/replay`, { event_id: got[0].headers['webhook-id'] });
    assert.equal(replay.status, 202);
    assert.equal(replay.body.queued, 1);
    const again = await receiver.waitFor('/flaky', 4);
    assert.equal(again[3].headers['webhook-id'], got[0].headers['webhook-id']);
    await api('DELETE', `/sessiond/v1/webhooks/${ep.body.id}`);
  });

  test('during a secret rotation, both the old and the new secret verify', async () => {
    const ep = await api('POST', '/sessiond/v1/webhooks', { url: `${receiver.base}/rotate`, event_types: ['user.updated'] });
    const rotated = await api('POST', `/sessiond/v1/webhooks/${ep.body.id}/rotate_secret`, { overlap_secs: 3600 });
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.secret, ep.body.secret);
    assert.ok(rotated.body.previous_secret_until > Date.now());
    const user = await clerk.users.createUser({ firstName: 'Rot' });
    await clerk.users.updateUser(user.id, { lastName: 'Ation' });
    const [d] = await receiver.waitFor('/rotate', 1);
    assert.equal(d.headers['webhook-signature'].split(' ').length, 2);
    for (const secret of [ep.body.secret, rotated.body.secret]) {
      const evt = await verifyWebhook(asRequest(d), { signingSecret: secret });
      assert.equal(evt.data.last_name, 'Ation');
    }
    await api('DELETE', `/sessiond/v1/webhooks/${ep.body.id}`);
  });

  test('bad endpoint input is 422 in sessiond\'s shape; other ids are 404', async () => {
    for (const body of [{ url: 'ftp://x' }, { url: 'https://user:pw@example.com/' }, { url: 'https://example.com', event_types: ['session.nope'] }, {}, { url: 'https://example.com', extra: 1 }]) {
      const r = await api('POST', '/sessiond/v1/webhooks', body);
      assert.equal(r.status, 422, JSON.stringify(body));
      assert.equal(r.body.error.code, 'invalid_input');
    }
    assert.equal((await api('GET', '/sessiond/v1/webhooks/ep_0000000000000000000000')).status, 404);
  });

  test('an offline verifier refuses a token once its session is in the revocation feed', async () => {
    const verifier = offlineVerifier({ baseUrl: server.url, appId: app.id, secretKey: SECRET_KEY });
    await verifier.poll(0);
    const user = await clerk.users.createUser({ firstName: 'Offline' });
    const session = await clerk.sessions.createSession({ userId: user.id });
    const { jwt } = await clerk.sessions.getToken(session.id);
    const claims = await verifier.verify(jwt);
    assert.equal(claims.sid, session.id);
    // Clerk's own offline check (networkless, with the PEM) agrees the token is valid.
    await verifyToken(jwt, { jwtKey: app.jwt_public_key });

    const waiting = verifier.poll(20);
    await clerk.sessions.revokeSession(session.id);
    const page = await waiting;
    assert.deepEqual(page.data.map((r) => [r.session_id, r.type]), [[session.id, 'session.revoked']]);
    await assert.rejects(verifier.verify(jwt), /revoked/);
    // The token itself is still unexpired: only the feed tells the verifier.
    await verifyToken(jwt, { jwtKey: app.jwt_public_key });
  });
});
