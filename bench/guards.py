"""What the guards cost, measured in one invocation against a baseline (release build first:
`cargo build --release -p sessiond`, or any bench/run):

1. the rate limiter: W2 and W6 (c=32, 8 s, one server core) on two fresh SQLite instances, one with
   the limiter on at a rate no workload reaches, one with it off, alternating three rounds; prints
   each median and the on/off ratio (the target is >= 0.97);
2. Clerk user search over sealed profiles: GET /v1/users with the default order, an order the
   store applies (-updated_at), and a profile-field order and a query (which open every profile),
   at 10,000 and 100,000 users.

Usage: python3 bench/guards.py"""
import json
import os
import sys
import tempfile
import time
import urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench

tmp = tempfile.mkdtemp()

class Off(bench.Sessiond):
    def env(self):
        e = super().env()
        e["SESSIOND_RATE_LIMIT_PER_APP_PER_SEC"] = "0"
        e["SESSIOND_RATE_LIMIT_AUTH_FAILURES_PER_MIN"] = "0"
        return e

def run(sys_, w, ids):
    m, p, b, _ = sys_.workloads[w]
    return bench.wrk(sys_.port, m, p, ids, sys_.headers, b, 32, 8, tmp)

results = {"on": {"W2": [], "W6": []}, "off": {"W2": [], "W6": []}}
on = bench.Sessiond("on", "sqlite", tmp)
off = Off("off", "sqlite", tmp)
for s in (on, off):
    s.start()
seeds = {id(s): s.seed(5000, 500) for s in (on, off)}
for rnd in range(3):
    for name, s in (("on", on), ("off", off)) if rnd % 2 == 0 else (("off", off), ("on", on)):
        sess, _ = seeds[id(s)]
        for w in ("W2", "W6"):
            r = run(s, w, sess)
            results[name][w].append(r["rps"])
            print(name, w, r["rps"], "p99", r["p99_ms"], "errors", r["errors"], flush=True)
for w in ("W2", "W6"):
    a = sorted(results["on"][w])[1]; b = sorted(results["off"][w])[1]
    print(f"{w}: median on {a} off {b} ratio on/off {a/b:.3f}")
off.stop(); off.cleanup()

# Query cost over N users (sealed profiles opened in chunks).
def get(path):
    req = urllib.request.Request(f"http://127.0.0.1:{on.port}{path}", headers=on.headers)
    t = time.perf_counter()
    body = urllib.request.urlopen(req).read()
    return time.perf_counter() - t, json.loads(body)
have = 500
for target in (10_000, 100_000):
    jobs = [("POST", "/v1/users", {"first_name": f"n{i:06d}", "email_address": [f"user{i}@scale.example"]}) for i in range(have, target)]
    t = time.perf_counter()
    bench.parallel(on.port, on.headers, jobs)
    have = target
    print(f"seeded {target} users ({time.perf_counter()-t:.1f} s)", flush=True)
    for label, path in (("default order, limit 10", "/v1/users?limit=10"),
                        ("order_by=-updated_at (store)", "/v1/users?limit=10&order_by=-updated_at"),
                        ("order_by=first_name (scan)", "/v1/users?limit=10&order_by=first_name"),
                        ("query=user4242@ (scan)", "/v1/users?limit=10&query=user4242%40"),
                        ("count query=scale (scan)", "/v1/users/count?query=scale")):
        times = sorted(get(path)[0] for _ in range(3))
        print(f"  N={target} {label}: median {times[1]*1000:.1f} ms", flush=True)
on.stop(); on.cleanup()
