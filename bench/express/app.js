// Baseline for bench/run: what many teams run instead of a sessions server — express-session's
// stores, here behind a small sessions API so that the same workloads can drive them.
//   STORE=redis  connect-redis on Redis; a SADD user:<id> index is the glue W3/W5 need.
//   STORE=pg     connect-pg-simple on PostgreSQL; an expression index on sess->>'userId'.
// Usage: STORE=redis|pg PORT=3001 [REDIS_URL=…] [DATABASE_URL=…] node app.js
'use strict';
const crypto = require('node:crypto');
const express = require('express');
const session = require('express-session');

const STORE = process.env.STORE || 'redis';
const PORT = Number(process.env.PORT || 3001);
const TTL_SECONDS = 7 * 24 * 3600;

async function main() {
  let store;
  let index; // user -> session ids glue
  if (STORE === 'redis') {
    const { createClient } = require('redis');
    const { RedisStore } = require('connect-redis');
    const client = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
    await client.connect();
    store = new RedisStore({ client, prefix: process.env.REDIS_PREFIX || 'sess:', ttl: TTL_SECONDS });
    const p = (process.env.REDIS_PREFIX || 'sess:') + 'user:';
    index = {
      add: (uid, sid) => client.sAdd(p + uid, sid),
      remove: (uid, sid) => client.sRem(p + uid, sid),
      async list(uid, limit) {
        const ids = (await client.sMembers(p + uid)).slice(0, limit);
        const out = [];
        for (const id of ids) {
          const s = await new Promise((res, rej) => store.get(id, (e, v) => (e ? rej(e) : res(v))));
          if (s) out.push({ id, ...s });
        }
        return out;
      },
      async removeAll(uid) {
        const ids = await client.sMembers(p + uid);
        if (ids.length) await client.del(ids.map((i) => (process.env.REDIS_PREFIX || 'sess:') + i));
        await client.del(p + uid);
        return ids.length;
      },
      prune: null, // Redis expires keys by itself.
    };
  } else {
    const pg = require('pg');
    const PgStore = require('connect-pg-simple')(session);
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 16 });
    await pool.query(`CREATE TABLE IF NOT EXISTS "session" ("sid" varchar NOT NULL PRIMARY KEY, "sess" json NOT NULL, "expire" timestamp(6) NOT NULL)`);
    await pool.query(`CREATE INDEX IF NOT EXISTS "IDX_session_expire" ON "session" ("expire")`);
    await pool.query(`CREATE INDEX IF NOT EXISTS "IDX_session_user" ON "session" ((sess->>'userId'), "expire" DESC)`);
    store = new PgStore({ pool, ttl: TTL_SECONDS, pruneSessionInterval: false });
    index = {
      add: async () => {},
      remove: async () => {},
      async list(uid, limit) {
        const r = await pool.query(`SELECT sid, sess FROM "session" WHERE sess->>'userId' = $1 ORDER BY expire DESC LIMIT $2`, [uid, limit]);
        return r.rows.map((row) => ({ id: row.sid, ...row.sess }));
      },
      async removeAll(uid) {
        const r = await pool.query(`DELETE FROM "session" WHERE sess->>'userId' = $1`, [uid]);
        return r.rowCount;
      },
      prune: () => pool.query(`DELETE FROM "session" WHERE expire < to_timestamp($1)`, [Date.now() / 1000]).then((r) => r.rowCount),
    };
  }
  const call = (fn, ...args) => new Promise((res, rej) => fn.call(store, ...args, (e, v) => (e ? rej(e) : res(v))));

  const app = express();
  app.use(express.json({ limit: '64kb' }));
  app.post('/sessions', async (req, res, next) => {
    try {
      const userId = req.body && req.body.userId;
      if (typeof userId !== 'string') return res.status(422).json({ error: 'userId' });
      const id = crypto.randomUUID();
      const data = { cookie: { originalMaxAge: TTL_SECONDS * 1000, expires: new Date(Date.now() + TTL_SECONDS * 1000) }, userId, createdAt: Date.now() };
      await call(store.set, id, data);
      await index.add(userId, id);
      res.json({ id, userId });
    } catch (e) { next(e); }
  });
  app.get('/sessions/:id', async (req, res, next) => {
    try {
      const s = await call(store.get, req.params.id);
      if (!s) return res.status(404).json({ error: 'not found' });
      s.cookie.expires = new Date(Date.now() + TTL_SECONDS * 1000);
      await call(store.touch, req.params.id, s); // keep-alive
      res.json({ id: req.params.id, ...s });
    } catch (e) { next(e); }
  });
  app.get('/users/:uid/sessions', async (req, res, next) => {
    try {
      res.json(await index.list(req.params.uid, Math.min(Number(req.query.limit || 20), 500)));
    } catch (e) { next(e); }
  });
  app.delete('/sessions/:id', async (req, res, next) => {
    try {
      const s = await call(store.get, req.params.id);
      await call(store.destroy, req.params.id);
      if (s) await index.remove(s.userId, req.params.id);
      res.json({ id: req.params.id, deleted: true });
    } catch (e) { next(e); }
  });
  app.delete('/users/:uid/sessions', async (req, res, next) => {
    try {
      res.json({ deleted: await index.removeAll(req.params.uid) });
    } catch (e) { next(e); }
  });
  app.post('/prune', async (req, res, next) => {
    try {
      if (!index.prune) return res.status(501).json({ error: 'the store expires sessions itself' });
      res.json({ deleted: await index.prune() });
    } catch (e) { next(e); }
  });
  app.get('/healthz', (req, res) => res.json({ status: 'ok' }));
  app.listen(PORT, '127.0.0.1', () => console.log(JSON.stringify({ message: 'listening', port: PORT, store: STORE })));
}

main().catch((e) => { console.error(e); process.exit(1); });
