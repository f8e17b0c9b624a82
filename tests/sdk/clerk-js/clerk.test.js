// The official @clerk/backend SDK, unchanged, pointed at sessiond through `apiUrl`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClerkClient, verifyToken } from '@clerk/backend';
import { SECRET_KEY, startServer } from './server.js';

let server;
let clerk;
let app; // sessiond's view of the application: publishable key, public key PEM

before(async () => {
  server = await startServer();
  const res = await fetch(`${server.url}/sessiond/v1/application`, { headers: { authorization: `Bearer ${SECRET_KEY}` } });
  app = await res.json();
  clerk = createClerkClient({ secretKey: SECRET_KEY, apiUrl: server.url, publishableKey: app.publishable_key });
});
after(async () => { await server?.stop(); });

function decode(jwt) {
  const [h, p] = jwt.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url').toString()));
  return { header: h, payload: p };
}

async function newUserAndSession(email) {
  const user = await clerk.users.createUser({ emailAddress: [email], firstName: 'Ada', publicMetadata: { role: 'admin' } });
  const session = await clerk.sessions.createSession({ userId: user.id });
  return { user, session };
}

describe('@clerk/backend against sessiond', () => {
  test('users: create, get, list, count, update, delete', async () => {
    const user = await clerk.users.createUser({
      emailAddress: ['grace@example.com'], firstName: 'Grace', lastName: 'Hopper', externalId: 'ext-42',
      publicMetadata: { team: 'navy' },
    });
    assert.match(user.id, /^user_/);
    assert.equal(user.firstName, 'Grace');
    assert.equal(user.primaryEmailAddress?.emailAddress, 'grace@example.com');
    assert.deepEqual(user.publicMetadata, { team: 'navy' });
    const got = await clerk.users.getUser(user.id);
    assert.equal(got.externalId, 'ext-42');
    const list = await clerk.users.getUserList({ emailAddress: ['grace@example.com'] });
    assert.equal(list.totalCount, 1);
    assert.equal(list.data[0].id, user.id);
    const byExt = await clerk.users.getUserList({ externalId: ['ext-42'] });
    assert.equal(byExt.data[0].id, user.id);
    const updated = await clerk.users.updateUser(user.id, { lastName: 'Murray Hopper' });
    assert.equal(updated.lastName, 'Murray Hopper');
    await assert.rejects(clerk.users.createUser({ emailAddress: ['GRACE@example.com'] }), (e) => {
      assert.equal(e.status, 422);
      assert.equal(e.errors[0].code, 'form_identifier_exists');
      return true;
    });
    await assert.rejects(clerk.users.createUser({ password: 'hunter2' }), (e) => {
      assert.equal(e.status, 422, 'shorter than 8 characters');
      assert.equal(e.errors[0].code, 'form_param_value_invalid');
      assert.equal(e.errors[0].meta.paramName, 'password');
      return true;
    });
    const { session } = { session: await clerk.sessions.createSession({ userId: user.id }) };
    const deleted = await clerk.users.deleteUser(user.id);
    assert.equal(deleted.id, user.id);
    await assert.rejects(clerk.sessions.getSession(session.id), (e) => e.status === 404, 'deleting a user deletes their sessions');
  });

  test('sessions: create, get, list (paginated), revoke', async () => {
    const { user, session } = await newUserAndSession('ada@example.com');
    assert.match(session.id, /^sess_/);
    assert.equal(session.status, 'active');
    assert.equal(session.userId, user.id);
    assert.ok(session.expireAt > session.createdAt, 'timestamps are milliseconds');
    assert.ok(session.createdAt > 1e12);
    const got = await clerk.sessions.getSession(session.id);
    assert.equal(got.id, session.id);
    const second = await clerk.sessions.createSession({ userId: user.id });
    const list = await clerk.sessions.getSessionList({ userId: user.id });
    assert.equal(list.totalCount, 2);
    assert.deepEqual(list.data.map((s) => s.id), [second.id, session.id], 'newest first');
    const page = await clerk.sessions.getSessionList({ userId: user.id, limit: 1, offset: 1 });
    assert.equal(page.data.length, 1);
    assert.equal(page.totalCount, 2);
    const byClient = await clerk.sessions.getSessionList({ clientId: session.clientId });
    assert.equal(byClient.data[0].id, session.id);
    const revoked = await clerk.sessions.revokeSession(session.id);
    assert.equal(revoked.status, 'revoked');
    const active = await clerk.sessions.getSessionList({ userId: user.id, status: 'active' });
    assert.deepEqual(active.data.map((s) => s.id), [second.id]);
    const rev = await clerk.sessions.getSessionList({ userId: user.id, status: 'revoked' });
    assert.deepEqual(rev.data.map((s) => s.id), [session.id]);
  });

  test('tokens: default, custom lifetime, verify offline and via JWKS, authenticateRequest', async () => {
    const { user, session } = await newUserAndSession('turing@example.com');
    const token = await clerk.sessions.getToken(session.id);
    const { header, payload } = decode(token.jwt);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.typ, 'JWT');
    assert.equal(payload.sid, session.id);
    assert.equal(payload.sub, user.id);
    assert.equal(payload.v, 2);
    assert.equal(payload.sts, 'active');
    assert.equal(payload.exp - payload.iat, 60);
    assert.equal(payload.nbf, payload.iat - 10);
    assert.equal(payload.aud, undefined);
    const long = await clerk.sessions.getToken(session.id, '', 3600);
    assert.equal(decode(long.jwt).payload.exp - decode(long.jwt).payload.iat, 3600);

    const offline = await verifyToken(token.jwt, { jwtKey: app.jwt_public_key });
    assert.equal(offline.sid, session.id);
    const remote = await verifyToken(token.jwt, { secretKey: SECRET_KEY, apiUrl: server.url, skipJwksCache: true });
    assert.equal(remote.sub, user.id);

    const req = new Request('https://app.example.com/api', { headers: { authorization: `Bearer ${token.jwt}` } });
    const state = await clerk.authenticateRequest(req, { jwtKey: app.jwt_public_key });
    assert.equal(state.isSignedIn, true, `signed in (reason: ${state.reason})`);
    assert.equal(state.toAuth().sessionId, session.id);
    const viaJwks = await clerk.authenticateRequest(req, {});
    assert.equal(viaJwks.isSignedIn, true, `signed in via JWKS (reason: ${viaJwks.reason})`);

    const verified = await clerk.sessions.verifySession(session.id, token.jwt);
    assert.equal(verified.id, session.id);
    await assert.rejects(clerk.sessions.verifySession(session.id, 'not.a.token'), (e) => e.status === 400 && e.errors[0].code === 'invalid_session_token');

    await clerk.sessions.revokeSession(session.id);
    await assert.rejects(clerk.sessions.getToken(session.id), (e) => e.status === 400 && e.errors[0].code === 'session_not_active');
  });

  test('JWT templates: CRUD and template tokens', async () => {
    const { user, session } = await newUserAndSession('lovelace@example.com');
    const tpl = await clerk.jwtTemplates.create({
      name: 'hasura', claims: { role: '{{user.public_metadata.role}}', email: '{{user.primary_email_address}}', greeting: 'hi {{user.first_name}}' },
      lifetime: 120, allowedClockSkew: 10,
    });
    assert.match(tpl.id, /^jtmp_/);
    assert.equal(tpl.lifetime, 120);
    const list = await clerk.jwtTemplates.list();
    assert.ok(list.data.some((t) => t.id === tpl.id));
    assert.equal((await clerk.jwtTemplates.get(tpl.id)).name, 'hasura');
    const updated = await clerk.jwtTemplates.update({ templateId: tpl.id, name: 'hasura', claims: { role: '{{user.public_metadata.role}}', email: '{{user.primary_email_address}}', greeting: 'hi {{user.first_name}}' }, lifetime: 300 });
    assert.equal(updated.lifetime, 300);

    const token = await clerk.sessions.getToken(session.id, 'hasura');
    const { header, payload } = decode(token.jwt);
    assert.equal(payload.role, 'admin');
    assert.equal(payload.email, 'lovelace@example.com');
    assert.equal(payload.greeting, 'hi Ada');
    assert.equal(payload.sub, user.id);
    assert.equal(payload.exp - payload.iat, 300);
    assert.equal(payload.nbf, payload.iat - 10);
    assert.equal(payload.sid, undefined, 'template tokens carry no sid');
    assert.equal(header.cat, 'cl_B7d4PD222AAA');
    const verified = await verifyToken(token.jwt, { jwtKey: app.jwt_public_key });
    assert.equal(verified.role, 'admin');
    const req = new Request('https://app.example.com/api', { headers: { authorization: `Bearer ${token.jwt}` } });
    const state = await clerk.authenticateRequest(req, { jwtKey: app.jwt_public_key });
    assert.equal(state.isSignedIn, false, 'a template token is not accepted as a session token');

    await assert.rejects(clerk.sessions.getToken(session.id, 'no-such-template'), (e) => e.status === 404 && e.errors[0].code === 'resource_not_found');
    await assert.rejects(clerk.jwtTemplates.create({ name: 'bad', claims: { sub: 'x' } }), (e) => e.status === 400 && e.errors[0].code === 'jwt_template_reserved_claim');
    const del = await clerk.jwtTemplates.delete(tpl.id);
    assert.equal(del.deleted, true);
    await assert.rejects(clerk.jwtTemplates.get(tpl.id), (e) => e.status === 404);
  });

  test('JWKS and errors', async () => {
    const jwks = await clerk.jwks.getJwks();
    assert.ok(jwks.keys.length >= 1);
    assert.equal(jwks.keys[0].alg, 'RS256');
    assert.equal(jwks.keys[0].use, 'sig');
    await assert.rejects(clerk.sessions.getSession('sess_0000000000000000000000'), (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.errors[0].code, 'resource_not_found');
      return true;
    });
    const bad = createClerkClient({ secretKey: 'sk_test_wrongwrongwrongwrongwrongwrong', apiUrl: server.url });
    await assert.rejects(bad.sessions.getSessionList({ userId: 'user_x' }), (e) => e.status === 401 && e.errors[0].code === 'clerk_key_invalid');
  });

  test('users: metadata deep merge, query and orderBy, passwords', async () => {
    const user = await clerk.users.createUser({
      emailAddress: ['merge.js@example.com'], firstName: 'Merle', lastName: 'Zimmer', password: 'js password 1',
      publicMetadata: { plan: { tier: 'pro', seats: 5 }, keep: true }, privateMetadata: { secret: 1 },
    });
    assert.equal(user.passwordEnabled, true);
    const merged = await clerk.users.updateUserMetadata(user.id, {
      publicMetadata: { plan: { seats: null, trial: false }, added: 'yes' }, privateMetadata: { secret: null },
    });
    assert.deepEqual(merged.publicMetadata, { plan: { tier: 'pro', trial: false }, keep: true, added: 'yes' });
    assert.deepEqual(merged.privateMetadata, {});

    const other = await clerk.users.createUser({ emailAddress: ['merge.other.js@example.com'], firstName: 'Abe', lastName: 'Young' });
    const found = await clerk.users.getUserList({ query: 'MERGE', orderBy: '+first_name' });
    assert.deepEqual(found.data.map((u) => u.id), [other.id, user.id]);
    assert.equal(found.totalCount, 2, 'the count honours the query');
    const desc = await clerk.users.getUserList({ query: 'merge', orderBy: '-last_name', limit: 1 });
    assert.deepEqual(desc.data.map((u) => u.id), [user.id], 'Zimmer before Young');
    assert.equal(desc.totalCount, 2);

    assert.deepEqual(await clerk.users.verifyPassword({ userId: user.id, password: 'js password 1' }), { verified: true });
    await assert.rejects(clerk.users.verifyPassword({ userId: user.id, password: 'nope nope nope' }),
      (e) => e.status === 422 && e.errors[0].code === 'form_password_incorrect');
    await assert.rejects(clerk.users.verifyPassword({ userId: other.id, password: 'whatever it is' }),
      (e) => e.status === 400 && e.errors[0].code === 'password_not_set');
  });

  test('sessions: refresh from an old session token; issuer passes every SDK default check', async () => {
    const { session } = await newUserAndSession('refresh.js@example.com');
    const old = await clerk.sessions.getToken(session.id);
    // The Go SDK's default issuer rule (jwt.Verify): https://clerk.… or ….clerk.accounts….
    const iss = decode(old.jwt).payload.iss;
    assert.ok(iss.startsWith('https://clerk.') || iss.includes('.clerk.accounts'), iss);
    const fresh = await clerk.sessions.refreshSession(session.id, {
      expired_token: old.jwt, refresh_token: 'not-used-by-sessiond', request_origin: 'https://app.example.com',
    });
    assert.equal(typeof fresh.jwt, 'string', JSON.stringify(fresh));
    assert.equal(decode(fresh.jwt).payload.sid, session.id);
    assert.equal((await verifyToken(fresh.jwt, { jwtKey: app.jwt_public_key })).sid, session.id);
    await clerk.sessions.revokeSession(session.id);
    await assert.rejects(clerk.sessions.refreshSession(session.id, {
      expired_token: old.jwt, refresh_token: 'x', request_origin: 'https://app.example.com',
    }), (e) => e.status === 401);
  });
});
