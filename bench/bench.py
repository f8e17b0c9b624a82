"""Orchestrates bench/run: starts every system on loopback, drives the same workloads with wrk,
each workload on every system in turn, stops them, and writes bench/results/latest.{json,md} and
chart.svg.

Systems: sessiond on SQLite and on PostgreSQL; peers express-session on Redis and on PostgreSQL
and axum-redis (bench/ceilings); ceilings: bare axum HTTP, RS256 signing, redis-benchmark GET/SET.

Workloads (each system through its own API; see bench/README.md):
  W1 create session · W2 get session by id with keep-alive · W3 list one user's sessions (20)
  W4 revoke one · W5 revoke all sessions of a user · W6 mint a session token · W7 purge expired
"""

import argparse
import concurrent.futures as cf
import http.client
import json
import os
import platform
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgmeter  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT))["target_directory"]
REL = os.path.join(TARGET, "release")
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SERVER_CPU, LOAD_CPU = "0", "1"
KEY = "sk_test_" + secrets.token_hex(32)


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def psql(sql, url=PG_ADMIN):
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True, text=True).stdout


def pg_url(db, via_port=None):
    """The URL of database `db`; with `via_port`, through the counting proxy on that port."""
    p = urllib.parse.urlsplit(PG_ADMIN)
    if via_port is None:
        return urllib.parse.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, ""))
    user = p.netloc.rsplit("@", 1)[0] + "@" if "@" in p.netloc else ""
    return f"{p.scheme}://{user}127.0.0.1:{via_port}/{db}?sslmode=disable"


def ctx_switches(pid):
    """Voluntary plus involuntary context switches of every thread of `pid` so far."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                            total += int(line.split()[1])
            except OSError:
                pass  # the thread exited meanwhile
    except OSError:
        return None
    return total


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port, path="/healthz", timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


class Client:
    """A keep-alive JSON client for seeding, one per thread."""

    def __init__(self, port, headers):
        self.port, self.headers, self.conn = port, headers, None

    def call(self, method, path, body=None):
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                data = json.dumps(body) if body is not None else None
                self.conn.request(method, path, body=data, headers=self.headers)
                r = self.conn.getresponse()
                text = r.read()
                if r.status >= 300:
                    raise RuntimeError(f"{method} {path}: {r.status} {text[:200]!r}")
                return json.loads(text) if text else None
            except (OSError, http.client.HTTPException):
                self.conn = None
        raise RuntimeError(f"{method} {path} failed")


def parallel(port, headers, jobs, threads=16):
    """Runs (method, path, body) jobs over `threads` keep-alive connections; returns results."""
    chunks = [jobs[i::threads] for i in range(threads)]

    def work(chunk):
        c = Client(port, headers)
        return [c.call(*j) for j in chunk]

    out = []
    with cf.ThreadPoolExecutor(threads) as ex:
        for part in ex.map(work, chunks):
            out.extend(part)
    return out


LUA = r"""
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
local i = 0
local method, path, body = "%(method)s", "%(path)s", %(body)s
local headers = %(headers)s
function setup(thread) thread:set("offset", math.random(1, #ids)) end
function init(args) i = offset or 1 end
function request()
  i = i %% #ids + 1
  local id = ids[i]
  local p = path:gsub("{id}", id)
  local b = body and body:gsub("{id}", id) or nil
  return wrk.format(method, p, headers, b)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"errors":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def lua_str(s):
    return json.dumps(s)


def wrk(port, method, path, ids, headers, body, conns, secs, tmp, pid=None):
    """One wrk run; with `pid`, also the server's context switches per request during it."""
    idfile = os.path.join(tmp, f"ids-{secrets.token_hex(4)}.txt")
    with open(idfile, "w") as f:
        f.write("\n".join(ids) + "\n")
    script = os.path.join(tmp, f"w-{secrets.token_hex(4)}.lua")
    hdr = "{" + ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in headers.items()) + "}"
    with open(script, "w") as f:
        f.write(LUA % {"ids": idfile, "method": method, "path": path, "body": lua_str(body) if body else "nil", "headers": hdr})
    cs0 = ctx_switches(pid) if pid else None
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "10s",
                          "-s", script, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH "))
    r = json.loads(line[6:])
    cs1 = ctx_switches(pid) if pid else None
    out = {"rps": round(r["requests"] / (r["duration_us"] / 1e6), 1), "p50_ms": round(r["p50_us"] / 1000, 3),
           "p99_ms": round(r["p99_us"] / 1000, 3), "errors": r["errors"], "requests": r["requests"]}
    if cs0 is not None and cs1 is not None and r["requests"]:
        out["ctx_switches_per_req"] = round((cs1 - cs0) / r["requests"], 3)
    return out


# ---------------------------------------------------------------------------------------------

class Sessiond:
    """sessiond through its Clerk (/v1) and Equisoft (/sessions) dialects."""

    workloads = {
        "W1": ("POST", "/v1/sessions", '{"user_id":"{id}"}', "users"),
        "W2": ("GET", "/sessions/{id}?keepAlive=true", None, "sessions"),
        "W3": ("GET", "/v1/sessions?user_id={id}&limit=20", None, "users"),
        "W4": ("POST", "/v1/sessions/{id}/revoke", None, "sessions"),
        "W5": ("DELETE", "/users/{id}/sessions", None, "users"),
        "W6": ("POST", "/v1/sessions/{id}/tokens", None, "sessions"),
    }

    def __init__(self, name, backend, tmp, extra_nodes=0):
        self.name, self.backend, self.tmp = name, backend, tmp
        self.dir = tempfile.mkdtemp(prefix="sessiond-bench-", dir=tmp)
        self.headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        self.db = None
        if backend == "postgres":
            self.db = "bench_sessiond_" + secrets.token_hex(4)
            psql(f'CREATE DATABASE "{self.db}"')
        self.procs, self.ports = [], []
        self.meter_port = None

    def env(self):
        env = {"PATH": os.environ["PATH"], "SESSIOND_DATA_DIR": self.dir, "SESSIOND_BOOTSTRAP_SECRET_KEY": KEY,
               "SESSIOND_LOG_LEVEL": "warn",
               # The limiter stays on (its cost is part of what is measured) with a rate no
               # workload reaches.
               "SESSIOND_RATE_LIMIT_PER_APP_PER_SEC": "10000000"}
        if self.db:
            env["SESSIOND_DATABASE_URL"] = pg_url(self.db, self.meter_port)
        return env

    def start(self, nodes=1, cpus=None):
        for n in range(nodes):
            port = free_port()
            cmd = [os.path.join(REL, "sessiond"), "serve", "--listen", f"127.0.0.1:{port}"]
            cpu = (cpus or [SERVER_CPU])[n % len(cpus or [SERVER_CPU])]
            p = subprocess.Popen(["taskset", "-c", cpu] + cmd, env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            self.ports.append(port)
            wait_http(port)
            if n == 0:
                # The first node creates the key file; later nodes share it.
                time.sleep(0.2)

    @property
    def port(self):
        return self.ports[0]

    def pid(self):
        return self.procs[0].pid

    def seed(self, n_sessions, n_users):
        users = [u["id"] for u in parallel(self.port, self.headers, [("POST", "/v1/users", {"first_name": f"u{i}"}) for i in range(n_users)])]
        jobs = [("POST", "/v1/sessions", {"user_id": users[i % n_users]}) for i in range(n_sessions)]
        sessions = [s["id"] for s in parallel(self.port, self.headers, jobs)]
        return sessions, users

    def purge(self, n):
        """W7: insert `n` expired sessions (setup, through SQL), then time one DELETE /sessions/expired."""
        self.bulk_insert(n, expire_at=1, tag="exp")
        t = time.perf_counter()
        Client(self.port, self.headers).call("DELETE", "/sessions/expired")
        return n, time.perf_counter() - t

    def bulk_insert(self, count, expire_at=4102444800000, tag="bulk"):
        """Adds `count` sessions straight into the database, spread over the existing users (setup
        for W7 and for the 1e6-session runs; creating them through the API would take minutes)."""
        tag = tag + secrets.token_hex(3)
        if self.backend == "sqlite":
            c = sqlite3.connect(os.path.join(self.dir, "sessiond.db"), timeout=60)
            c.execute("CREATE TEMP TABLE bu AS SELECT row_number() OVER () - 1 AS n, id, application_id FROM users")
            nu = c.execute("SELECT count(*) FROM bu").fetchone()[0]
            c.execute(f"""WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < ?)
                INSERT INTO sessions (id, application_id, user_id, client_id, status, created_at, updated_at,
                    last_active_at, expire_at, abandon_at, version, attributes)
                SELECT 'sess_{tag}' || printf('%017d', i), bu.application_id, bu.id, 'client_{tag}' || i, 'active',
                       1700000000000 + i, 1700000000000 + i, 1700000000000 + i, ?, 4102444800000, 1, '{{}}'
                FROM x JOIN bu ON bu.n = x.i % ?""", (count, expire_at, nu))
            c.commit()
            c.close()
        else:
            psql(f"""WITH bu AS (SELECT row_number() OVER () - 1 AS n, id, application_id FROM users),
                nu AS (SELECT count(*) AS c FROM bu)
                INSERT INTO sessions (id, application_id, user_id, client_id, status, created_at, updated_at,
                    last_active_at, expire_at, abandon_at, version, attributes)
                SELECT 'sess_{tag}' || lpad(g::text, 17, '0'), bu.application_id, bu.id, 'client_{tag}' || g, 'active',
                       1700000000000 + g, 1700000000000 + g, 1700000000000 + g, {expire_at}, 4102444800000, 1, '{{}}'
                FROM generate_series(1, {count}) g, nu JOIN bu ON true WHERE bu.n = g % nu.c""", pg_url(self.db))

    def age_sessions(self, secs):
        """Moves every session's last activity `secs` back, straight in the database: the next read
        of each with keep-alive (W2) or a token (W6) is then due to record activity."""
        sql = f"UPDATE sessions SET last_active_at = last_active_at - {secs * 1000}"
        if self.backend == "sqlite":
            c = sqlite3.connect(os.path.join(self.dir, "sessiond.db"), timeout=60)
            c.execute(sql)
            c.commit()
            c.close()
        else:
            psql(sql, pg_url(self.db))

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=15)
        self.procs, self.ports = [], []

    def cleanup(self):
        if self.db:
            psql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        shutil.rmtree(self.dir, ignore_errors=True)


class Express:
    """express-session with connect-redis or connect-pg-simple (bench/express/app.js)."""

    workloads = {
        "W1": ("POST", "/sessions", '{"userId":"{id}"}', "users"),
        "W2": ("GET", "/sessions/{id}", None, "sessions"),
        "W3": ("GET", "/users/{id}/sessions?limit=20", None, "users"),
        "W4": ("DELETE", "/sessions/{id}", None, "sessions"),
        "W5": ("DELETE", "/users/{id}/sessions", None, "users"),
    }

    def __init__(self, name, store, tmp):
        self.name, self.store = name, store
        self.headers = {"Content-Type": "application/json"}
        self.db = None
        self.prefix = f"bench{secrets.token_hex(4)}:"
        if store == "pg":
            self.db = "bench_express_" + secrets.token_hex(4)
            psql(f'CREATE DATABASE "{self.db}"')
        self.proc = None
        self.meter_port = None

    def start(self):
        self.port_ = free_port()
        env = {"PATH": os.environ["PATH"], "STORE": self.store, "PORT": str(self.port_), "REDIS_PREFIX": self.prefix, "NODE_ENV": "production"}
        if self.db:
            env["DATABASE_URL"] = pg_url(self.db, self.meter_port)
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, "node", os.path.join(ROOT, "bench", "express", "app.js")],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(self.port_)

    @property
    def port(self):
        return self.port_

    def pid(self):
        return self.proc.pid

    def seed(self, n_sessions, n_users):
        users = [f"user-{secrets.token_hex(6)}" for _ in range(n_users)]
        jobs = [("POST", "/sessions", {"userId": users[i % n_users]}) for i in range(n_sessions)]
        return [s["id"] for s in parallel(self.port, self.headers, jobs)], users

    def purge(self, n):
        if self.store != "pg":
            return None  # Redis expires keys itself; there is nothing to sweep.
        psql(f"""INSERT INTO "session" (sid, sess, expire) SELECT 'exp' || g, json_build_object('userId', 'expired', 'cookie', '{{}}'::json),
                 now() - interval '1 day' FROM generate_series(1, {n}) g""", pg_url(self.db))
        t = time.perf_counter()
        Client(self.port, self.headers).call("POST", "/prune")
        return n, time.perf_counter() - t

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def cleanup(self):
        if self.db:
            psql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        else:
            subprocess.run(f"redis-cli --scan --pattern '{self.prefix}*' | xargs -r -n 500 redis-cli del > /dev/null", shell=True)


class AxumRedis(Express):
    """bench/ceilings axum-redis: axum and the `redis` crate on one multiplexed connection, serving
    the Express baseline's routes (GETEX for get + keep-alive, pipelines where the model allows)."""

    def __init__(self, name, tmp):
        super().__init__(name, "redis", tmp)

    def start(self):
        self.port_ = free_port()
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, os.path.join(REL, "axum-redis"), f"127.0.0.1:{self.port_}",
                                      "redis://127.0.0.1:6379", self.prefix], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(self.port_)


# ---------------------------------------------------------------------------------------------

def machine():
    def first(cmd):
        try:
            return subprocess.check_output(cmd, shell=True, text=True, stderr=subprocess.DEVNULL).strip().splitlines()[0]
        except (subprocess.CalledProcessError, IndexError):
            return None
    model = first("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    return {"cpus": os.cpu_count(), "cpu_model": model and model.strip(), "memory": first("free -h | awk '/Mem:/ {print $2}'"),
            "kernel": platform.release(), "server_cpu": SERVER_CPU, "load_cpu": LOAD_CPU,
            "sessiond": first(f"{os.path.join(REL, 'sessiond')} --version"), "node": first("node --version"),
            "postgres": first("psql --version"), "redis": first("redis-server --version"), "wrk": first("wrk -v 2>&1")}


WORKLOAD_ORDER = ["W2", "W3", "W6", "W1", "W4", "W5"]


def record(results, name, w, c, r, pid):
    results.append({"system": name, "workload": w, "concurrency": c, **r, "rss_mb": rss_mb(pid) if pid else None})
    log(f"{name} {w} c={c}: {r['rps']} req/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms errors {r['errors']} "
        f"ctx/req {r.get('ctx_switches_per_req')}")


def run_systems(systems, args, tmp, results, with_ceilings):
    """Every system started and seeded first, then each workload at each concurrency run on every
    system in turn (and on the ceilings beside them), so that the runs a ratio compares are at
    most a minute apart. This machine's speed drifts by tens of percent over a run of half an
    hour; one system after another put that drift into the ratios."""
    started, pools = [], {}
    http_ceiling, ceiling_port = None, None
    try:
        for sys_ in systems:
            log(f"{sys_.name}: starting")
            sys_.start()
            started.append(sys_)
            t = time.time()
            sessions, users = sys_.seed(args.sessions, max(1, args.sessions // 20))
            log(f"{sys_.name}: seeded {len(sessions)} sessions for {len(users)} users in {time.time() - t:.1f}s")
            random.shuffle(sessions)
            pools[sys_.name] = {"sessions": sessions, "users": users}
        if with_ceilings:
            ceiling_port = free_port()
            http_ceiling = subprocess.Popen(["taskset", "-c", SERVER_CPU, os.path.join(REL, "http-ceiling"),
                                             f"127.0.0.1:{ceiling_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_http(ceiling_port, "/")
        for w in WORKLOAD_ORDER:
            for c in args.concurrency:
                for sys_ in started:
                    if w not in sys_.workloads:
                        continue
                    method, path, body, pool = sys_.workloads[w]
                    r = wrk(sys_.port, method, path, pools[sys_.name][pool], sys_.headers, body, c, args.seconds, tmp,
                            pid=sys_.pid())
                    record(results, sys_.name, w, c, r, sys_.pid())
                if w == "W2" and http_ceiling:
                    r = wrk(ceiling_port, "GET", "/sessions/{id}", ["x"], {}, None, c, args.seconds, tmp)
                    record(results, "http-ceiling", "W2", c, r, http_ceiling.pid)
            if w == "W6" and with_ceilings:
                rs256_ceiling(args, results)
        for sys_ in started:
            purged = sys_.purge(args.sessions)
            if purged:
                n, secs = purged
                results.append({"system": sys_.name, "workload": "W7", "concurrency": 1, "rps": round(n / secs, 1),
                                "p50_ms": round(secs * 1000, 1), "p99_ms": round(secs * 1000, 1), "rss_mb": rss_mb(sys_.pid()),
                                "errors": 0, "purged": n})
                log(f"{sys_.name} W7: purged {n} in {secs:.3f}s")
    finally:
        if http_ceiling:
            http_ceiling.terminate()
            http_ceiling.wait()
        for sys_ in started:
            sys_.stop()
            sys_.cleanup()


def rs256_ceiling(args, results):
    out = subprocess.check_output(["taskset", "-c", SERVER_CPU, os.path.join(REL, "rs256-ceiling"), "1", str(args.seconds)], text=True)
    r = json.loads(out)
    for c in args.concurrency:
        results.append({"system": "rs256-ceiling", "workload": "W6", "concurrency": c, "rps": r["rps"], "p50_ms": round(r["p50_ms"], 3),
                        "p99_ms": round(r["p99_ms"], 3), "rss_mb": None, "errors": 0})
    log(f"rs256-ceiling: {r['rps']} signatures/s on one core")


def redis_ceiling(args, results):
    """redis-benchmark GET and SET (a 100-byte value, random keys under a private prefix) at each
    concurrency, pinned to the load CPU: the cost of an in-memory store behind loopback."""
    prefix = f"benchceil{secrets.token_hex(4)}:"
    n = 20_000 if args.quick else 300_000
    value = "v" * 100
    try:
        for c in args.concurrency:
            for op, cmd in (("SET", ["SET", prefix + "__rand_int__", value]), ("GET", ["GET", prefix + "__rand_int__"])):
                out = subprocess.run(["taskset", "-c", LOAD_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", "6379", "-c", str(c),
                                      "-n", str(n), "-r", "100000", "--csv"] + cmd, capture_output=True, text=True, check=True).stdout
                row = [l for l in out.splitlines() if l and not l.startswith('"test"')][-1]
                cols = [x.strip('"') for x in row.split('","')]
                rps, p50, p99 = float(cols[1]), float(cols[4]), float(cols[6])
                w = "W1" if op == "SET" else "W2"
                results.append({"system": "redis-ceiling", "workload": w, "concurrency": c, "rps": rps, "p50_ms": p50,
                                "p99_ms": p99, "rss_mb": None, "errors": 0, "op": op})
                log(f"redis-ceiling {op} c={c}: {rps} req/s p99 {p99} ms")
    finally:
        subprocess.run(f"redis-cli --scan --pattern '{prefix}*' | xargs -r -n 500 redis-cli del > /dev/null", shell=True)


def pg_wire(args, tmp):
    """Statements and round trips per request on PostgreSQL, counted on the wire by bench/pgmeter.py
    (a separate, sequential pass: the proxy is not in the timed runs). Each workload is warmed up
    first so that statement preparation is not counted."""
    up = urllib.parse.urlsplit(PG_ADMIN)
    meter = pgmeter.Meter(up.hostname or "127.0.0.1", up.port or 5432)
    n, warm = (40, 10) if args.quick else (300, 30)
    out = {}
    for sys_ in (Sessiond("sessiond-postgres", "postgres", tmp), Express("express-pg", "pg", tmp)):
        sys_.meter_port = meter.port
        sys_.start()
        try:
            sessions, users = sys_.seed(3 * (n + warm), n + warm)
            pools = {"sessions": sessions, "users": users}
            client = Client(sys_.port, sys_.headers)
            per = out.setdefault(sys_.name, {})
            # What the idle node sends on its own (timers: re-reads, leases), per second; the
            # request figures are also given net of it, so they do not depend on how fast the
            # sequential pass runs.
            idle_s = 1 if args.quick else 10
            time.sleep(1)
            i0 = meter.counts()
            time.sleep(idle_s)
            i1 = meter.counts()
            idle = ((i1[0] - i0[0]) / idle_s, (i1[1] - i0[1]) / idle_s)
            per["idle_per_s"] = {"statements": round(idle[0], 2), "round_trips": round(idle[1], 2)}
            for w in ["W2", "W3", "W6", "W1", "W4", "W5"]:
                if w not in sys_.workloads:
                    continue
                method, path, body, pool = sys_.workloads[w]
                call = lambda i: client.call(method, path.replace("{id}", pools[pool][i]),
                                             json.loads(body.replace("{id}", pools[pool][i])) if body else None)
                for i in range(warm):
                    call(i)
                # Three parts, each figure the lowest of the three: the scheduled jobs send their
                # statements in bursts at slot boundaries, and a burst that lands inside a part is
                # not the requests' (bench/README.md).
                parts = []
                step = n // 3
                for start in range(warm, warm + 3 * step, step):
                    s0, r0 = meter.counts()
                    t0 = time.monotonic()
                    for i in range(start, start + step):
                        call(i)
                    s1, r1 = meter.counts()
                    took = time.monotonic() - t0
                    parts.append({"statements": round((s1 - s0) / step, 2), "round_trips": round((r1 - r0) / step, 2),
                                  "net_statements": round(max(0.0, s1 - s0 - idle[0] * took) / step, 2),
                                  "net_round_trips": round(max(0.0, r1 - r0 - idle[1] * took) / step, 2)})
                per[w] = {k: min(p[k] for p in parts) for k in parts[0]}
                log(f"pg wire {sys_.name} {w}: {per[w]}")
        finally:
            sys_.stop()
            sys_.cleanup()
    return out


def w3_growth(args, tmp):
    """W3 p99 at 1e4 and at 1e6 stored sessions (SQLite), and RSS with 1e6 stored."""
    small, large = (1_000, 100_000) if args.quick else (10_000, 1_000_000)
    s = Sessiond("sessiond-sqlite", "sqlite", tmp)
    s.start()
    try:
        _, users = s.seed(small, max(1, small // 20))
        method, path, body, _ = Sessiond.workloads["W3"]
        a = wrk(s.port, method, path, users, s.headers, body, 32, args.seconds, tmp, pid=s.pid())
        s.stop()
        t = time.time()
        s.bulk_insert(large - small)
        log(f"W3 growth: bulk-inserted up to {large} sessions in {time.time() - t:.1f}s")
        s.start()
        b = wrk(s.port, method, path, users, s.headers, body, 32, args.seconds, tmp, pid=s.pid())
        rss = rss_mb(s.pid())
        return {"stored_small": small, "stored_large": large, "p99_ms_small": a["p99_ms"], "p99_ms_large": b["p99_ms"],
                "rps_small": a["rps"], "rps_large": b["rps"], "p99_growth": round(b["p99_ms"] / max(a["p99_ms"], 1e-6), 2),
                "rss_mb_large": rss}
    finally:
        s.stop()
        s.cleanup()


def multi_node(args, tmp):
    """W1 and W2 on PostgreSQL with one and with two sessiond processes on the same database."""
    out = {}
    for nodes in (1, 2):
        s = Sessiond("sessiond-postgres", "postgres", tmp)
        # Every node on the server's core: a node sharing wrk's core measured its own p99 at
        # 170+ ms from scheduling alone (wrk busy on the same core), which said nothing of sessiond.
        s.start(nodes=nodes, cpus=[SERVER_CPU])
        try:
            sessions, users = s.seed(max(1000, args.sessions // 10), 100)
            for w, pool in (("W2", sessions), ("W1", users)):
                method, path, body, _ = Sessiond.workloads[w]
                with cf.ThreadPoolExecutor(nodes) as ex:
                    parts = list(ex.map(lambda port: wrk(port, method, path, pool, s.headers, body, 32 // nodes, args.seconds, tmp), s.ports))
                out[f"{w}_{nodes}_node"] = {"rps": round(sum(p["rps"] for p in parts), 1), "p99_ms": max(p["p99_ms"] for p in parts),
                                            "errors": sum(p["errors"] for p in parts)}
                log(f"multi-node {w} nodes={nodes}: {out[f'{w}_{nodes}_node']}")
        finally:
            s.stop()
            s.cleanup()
    return out


def pick(results, system, workload, c):
    for r in results:
        if r["system"] == system and r["workload"] == workload and r["concurrency"] == c:
            return r
    return None


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def report(doc, path_md, path_svg):
    res = doc["results"]
    levels = sorted({r["concurrency"] for r in res if r["workload"] != "W7"})
    lines = ["# sessiond benchmark", "", f"Mode: {doc['mode']}; {doc['seconds']} s per run; server on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU}; "
             f"{doc['sessions']} sessions seeded per system.", "",
             "| workload | c | sessiond-sqlite | sessiond-postgres | express-redis | express-pg | axum-redis | ceiling | "
             "sqlite/express-redis | sqlite/axum-redis | pg/express-pg | vs ceiling | sqlite p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: f"{v:,.0f}" if v else "n/a"
    for w in ["W1", "W2", "W3", "W4", "W5", "W6"]:
        for c in levels:
            get = lambda s: (pick(res, s, w, c) or {}).get("rps")
            ceil = get("http-ceiling") if w == "W2" else get("rs256-ceiling") if w == "W6" else None
            cells = [get(s) for s in ("sessiond-sqlite", "sessiond-postgres", "express-redis", "express-pg", "axum-redis")]
            p99 = (pick(res, "sessiond-sqlite", w, c) or {}).get("p99_ms")
            lines.append(f"| {w} | {c} | " + " | ".join(fmt(v) for v in cells) + f" | {fmt(ceil)} | {ratio(cells[0], cells[2]) or 'n/a'} | "
                         f"{ratio(cells[0], cells[4]) or 'n/a'} | {ratio(cells[1], cells[3]) or 'n/a'} | {ratio(cells[0], ceil) or 'n/a'} | "
                         f"{p99 if p99 is not None else 'n/a'} |")
    lines += ["", "Requests per second. Ceilings: W2 bare axum (http-ceiling), W6 RS256 signing on one thread. p50/p99 "
              "latencies, RSS and errors of every run are in latest.json.", ""]
    rc = [r for r in res if r["system"] == "redis-ceiling"]
    if rc:
        lines += ["| redis-ceiling (redis-benchmark) | c | req/s | p99 ms |", "|---|---|---|---|"]
        lines += [f"| {r['op']} | {r['concurrency']} | {fmt(r['rps'])} | {r['p99_ms']} |" for r in rc]
        lines.append("")
    systems_cs = ["sessiond-sqlite", "sessiond-postgres", "express-redis", "express-pg", "axum-redis"]
    cs_rows = []
    for w in ["W1", "W2", "W3", "W4", "W5", "W6"]:
        vals = [(pick(res, s, w, 32) or {}).get("ctx_switches_per_req") for s in systems_cs]
        if any(v is not None for v in vals):
            cs_rows.append(f"| {w} | " + " | ".join("n/a" if v is None else f"{v:.2f}" for v in vals) + " |")
    if cs_rows:
        lines += ["Server context switches per request at c=32 (all threads, voluntary + involuntary, /proc deltas over the run):", "",
                  "| workload | " + " | ".join(systems_cs) + " |", "|---" * (len(systems_cs) + 1) + "|"] + cs_rows + [""]
    wire = doc.get("pg_wire")
    if wire:
        names = list(wire)
        lines += ["PostgreSQL statements / round trips per request, counted on the wire (bench/pgmeter.py, sequential pass after warm-up, lowest of its three parts); "
                  "in brackets, the same net of what the idle server sends on its own over the pass's time:", "",
                  "| workload | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]

        def cell(c):
            if not c:
                return "n/a"
            net = f" ({c['net_statements']} / {c['net_round_trips']})" if "net_statements" in c else ""
            return f"{c['statements']} / {c['round_trips']}{net}"
        for w in ["W1", "W2", "W3", "W4", "W5", "W6"]:
            cells = [wire[n].get(w) for n in names]
            if any(cells):
                lines.append(f"| {w} | " + " | ".join(cell(c) for c in cells) + " |")
        idle = [wire[n].get("idle_per_s") for n in names]
        if any(idle):
            lines.append("| idle, per second | " + " | ".join(f"{c['statements']} / {c['round_trips']}" if c else "n/a" for c in idle) + " |")
        lines.append("")
    w7 = [r for r in res if r["workload"] == "W7"]
    if w7:
        lines += ["| W7 purge | sessions purged | seconds |", "|---|---|---|"]
        lines += [f"| {r['system']} | {r['purged']} | {r['p50_ms'] / 1000:.3f} |" for r in w7]
        lines.append("")
    g, m = doc.get("w3_growth"), doc.get("multi_node")
    if g:
        lines += [f"W3 (c=32) p99: {g['p99_ms_small']} ms with {g['stored_small']:,} sessions stored, {g['p99_ms_large']} ms with "
                  f"{g['stored_large']:,} (×{g['p99_growth']}); sessiond RSS with {g['stored_large']:,} stored: {g['rss_mb_large']} MB.", ""]
    if m:
        lines += ["| PostgreSQL, c=32 | 1 node | 2 nodes |", "|---|---|---|"]
        for w in ("W1", "W2"):
            a, b = m.get(f"{w}_1_node", {}), m.get(f"{w}_2_node", {})
            lines.append(f"| {w} req/s (p99 ms) | {a.get('rps')} ({a.get('p99_ms')}) | {b.get('rps')} ({b.get('p99_ms')}) |")
        lines.append("")
    t = doc["targets"]
    lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {k} | {v['measured']} | {'yes' if v['met'] else 'no'} |" for k, v in t.items()]
    with open(path_md, "w") as f:
        f.write("\n".join(lines) + "\n")
    # Chart: req/s at c=32 (or the highest level run) per workload and system, log scale.
    c = 32 if 32 in levels else levels[-1]
    systems = ["sessiond-sqlite", "sessiond-postgres", "express-redis", "express-pg", "axum-redis", "http-ceiling", "rs256-ceiling"]
    colors = ["#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#8c564b", "#7f7f7f", "#9467bd"]
    import math
    W, H, left, top, bottom = 1000, 420, 70, 40, 60
    groups = ["W1", "W2", "W3", "W4", "W5", "W6"]
    gw = (W - left - 20) / len(groups)
    bw = gw / (len(systems) + 1)
    vmax = max([r["rps"] for r in res if r["concurrency"] == c and r["workload"] in groups and r["rps"]] + [10])
    top_log = math.ceil(math.log10(vmax))
    y = lambda v: top + (H - top - bottom) * (1 - (math.log10(max(v, 1)) / top_log))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="20" font-size="14">Requests per second at {c} connections (log scale; higher is better)</text>']
    for k in range(0, top_log + 1):
        yy = y(10 ** k)
        svg.append(f'<line x1="{left}" x2="{W - 20}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/><text x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end">{10 ** k:,}</text>')
    for gi, w in enumerate(groups):
        x0 = left + gi * gw
        svg.append(f'<text x="{x0 + gw / 2:.1f}" y="{H - bottom + 18}" text-anchor="middle">{w}</text>')
        for si, s in enumerate(systems):
            r = pick(res, s, w, c)
            if not r or not r["rps"]:
                continue
            xx, yy = x0 + (si + 0.5) * bw, y(r["rps"])
            svg.append(f'<rect x="{xx:.1f}" y="{yy:.1f}" width="{bw * 0.9:.1f}" height="{H - bottom - yy:.1f}" fill="{colors[si]}"><title>{s} {w}: {r["rps"]:,.0f} req/s</title></rect>')
    for si, s in enumerate(systems):
        svg.append(f'<rect x="{left + si * 130}" y="{H - 22}" width="12" height="12" fill="{colors[si]}"/><text x="{left + si * 130 + 16}" y="{H - 12}">{s}</text>')
    svg.append("</svg>")
    with open(path_svg, "w") as f:
        f.write("\n".join(svg) + "\n")


def targets(doc):
    res, c = doc["results"], 32
    get = lambda s, w, c=c: (pick(res, s, w, c) or {})
    t = {}

    def add(name, measured, met):
        t[name] = {"measured": measured, "met": bool(met)}

    def vs(name, sys_a, sys_b, w, at_least, c=c):
        r = ratio(get(sys_a, w, c).get("rps"), get(sys_b, w, c).get("rps"))
        add(name, f"{r}x", r is not None and r >= at_least)

    w2 = get("sessiond-sqlite", "W2")
    vs("W2 >= 5x express-redis (c=32)", "sessiond-sqlite", "express-redis", "W2", 5)
    vs("W2 >= 1.5x axum-redis (c=32)", "sessiond-sqlite", "axum-redis", "W2", 1.5)
    r = ratio(w2.get("rps"), get("http-ceiling", "W2").get("rps"))
    add("W2 >= 50% of the HTTP ceiling (c=32)", f"{round((r or 0) * 100)}%", r and r >= 0.5)
    add("W2 p99 <= 2 ms (c=32)", f"{w2.get('p99_ms')} ms", w2.get("p99_ms") is not None and w2["p99_ms"] <= 2)
    cs = w2.get("ctx_switches_per_req")
    add("W2 <= 1 context switch per request (c=32)", f"{cs}", cs is not None and cs <= 1)
    w1 = get("sessiond-sqlite", "W1")
    vs("W1 >= 3x express-redis (c=32)", "sessiond-sqlite", "express-redis", "W1", 3)
    vs("W1 >= 1x axum-redis (c=32)", "sessiond-sqlite", "axum-redis", "W1", 1)
    add("W1 p99 <= 5 ms (c=32)", f"{w1.get('p99_ms')} ms", w1.get("p99_ms") is not None and w1["p99_ms"] <= 5)
    for w in ("W4", "W5"):
        for cc in (1, 32):
            vs(f"{w} >= 3x express-redis (c={cc})", "sessiond-sqlite", "express-redis", w, 3, c=cc)
    r4 = ratio(get("sessiond-sqlite", "W6").get("rps"), get("rs256-ceiling", "W6").get("rps"))
    add("W6 >= 80% of the RS256 ceiling (c=32)", f"{round((r4 or 0) * 100)}%", r4 and r4 >= 0.8)
    w7 = {r["system"]: r["p50_ms"] / 1000 for r in res if r["workload"] == "W7"}
    for s in ("sessiond-sqlite", "sessiond-postgres"):
        a, b = w7.get(s), w7.get("express-pg")
        add(f"W7 {s} purge <= express-pg's time", f"{a and round(a, 3)} s vs {b and round(b, 3)} s", a is not None and b is not None and a <= b)
    for w in ("W1", "W2"):
        vs(f"{w} on PostgreSQL >= 2x express-pg (c=32)", "sessiond-postgres", "express-pg", w, 2)
    wire = (doc.get("pg_wire") or {}).get("sessiond-postgres") or {}
    for w, limit, kind in (("W2", 1, "read"), ("W3", 1, "read"), ("W1", 2, "write"), ("W4", 2, "write"), ("W5", 2, "write")):
        c = wire.get(w) or {}
        rt, net = c.get("round_trips"), c.get("net_round_trips")
        # Judged on the request's own round trips: the idle node's timers are a per-node cost
        # per second, shown beside it, not a per-request one.
        add(f"PostgreSQL {w} ({kind}) <= {limit} round trip{'s' if limit > 1 else ''} per request",
            f"{net} ({rt} with the idle node's own)", net is not None and net <= limit)
    g = doc.get("w3_growth") or {}
    add(f"W3 p99 grows <= 1.5x from {g.get('stored_small')} to {g.get('stored_large')} stored", f"x{g.get('p99_growth')}", g.get("p99_growth") and g["p99_growth"] <= 1.5)
    add(f"sessiond RSS <= 100 MB with {g.get('stored_large')} sessions on SQLite", f"{g.get('rss_mb_large')} MB", g.get("rss_mb_large") and g["rss_mb_large"] <= 100)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: short runs, small data, a few minutes")
    ap.add_argument("--systems", default="sessiond-sqlite,sessiond-postgres,express-redis,express-pg,axum-redis,ceilings",
                    help="comma-separated subset to run (default: all)")
    args = ap.parse_args()
    args.seconds = 1 if args.quick else 10
    args.concurrency = [1, 32] if args.quick else [1, 32, 128]
    args.sessions = 1_000 if args.quick else 100_000
    wanted = args.systems.split(",")
    results = []
    tmp = tempfile.mkdtemp(prefix="bench-")
    started = time.time()
    try:
        factories = {
            "sessiond-sqlite": lambda: Sessiond("sessiond-sqlite", "sqlite", tmp),
            "sessiond-postgres": lambda: Sessiond("sessiond-postgres", "postgres", tmp),
            "express-redis": lambda: Express("express-redis", "redis", tmp),
            "express-pg": lambda: Express("express-pg", "pg", tmp),
            "axum-redis": lambda: AxumRedis("axum-redis", tmp),
        }
        systems = [make() for name, make in factories.items() if name in wanted]
        run_systems(systems, args, tmp, results, "ceilings" in wanted)
        if "ceilings" in wanted:
            redis_ceiling(args, results)
        doc = {"machine": machine(), "mode": "quick" if args.quick else "full", "seconds": args.seconds, "sessions": args.sessions,
               "results": results}
        if "sessiond-sqlite" in wanted:
            doc["w3_growth"] = w3_growth(args, tmp)
        if "sessiond-postgres" in wanted:
            doc["multi_node"] = multi_node(args, tmp)
            doc["pg_wire"] = pg_wire(args, tmp)
        doc["targets"] = targets(doc)
        doc["elapsed_s"] = round(time.time() - started, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    outdir = os.path.join(ROOT, "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "latest.json"), "w") as f:
        json.dump(doc, f, indent=2)
    report(doc, os.path.join(outdir, "latest.md"), os.path.join(outdir, "chart.svg"))
    log(f"done in {doc['elapsed_s']} s: bench/results/latest.json, latest.md, chart.svg")
    print(open(os.path.join(outdir, "latest.md")).read())


if __name__ == "__main__":
    main()
