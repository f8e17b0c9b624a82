#!/usr/bin/env python3
"""What one subscribed webhook endpoint costs the request path, in one invocation:

  python3 bench/events.py [--workload W1] [--backend sqlite|postgres] [--concurrency 32] [--seconds 8] [--rounds 3]

The same release build twice per round, interleaved: A with no endpoint, B with one endpoint
subscribed to every event type, pointing at a local receiver (bench/ceilings' http-ceiling,
answering 200 at once, pinned with wrk to the load CPU). Each instance is fresh (SQLite, or a new
PostgreSQL database with --backend postgres) with 20,000 sessions for 1,000 users seeded through the API before the endpoint is added (so the backlog is
not the seed). sessiond is pinned to one CPU, as in bench/run: deliveries are made on that same
core, so B pays for rendering, signing and sending every event it creates, not only for writing
it. Printed per variant: requests per second, server CPU per request, p99, and for B the deliveries
made during the run and how long the outbox took to drain afterwards.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from ab import cpu_seconds, median  # noqa: E402


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def one_round(args, subscribed, receiver_port, seed):
    tmp = tempfile.mkdtemp(prefix="bench-events-")
    s = bench.Sessiond("events", args.backend, tmp)
    env = s.env

    def with_webhooks():
        e = env()
        e["SESSIOND_WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
        return e

    s.env = with_webhooks
    s.start()
    try:
        sessions, users = s.seed(20_000, 1_000)
        random.Random(seed).shuffle(sessions)
        if subscribed:
            bench.Client(s.port, s.headers).call(
                "POST", "/sessiond/v1/webhooks", {"url": f"http://127.0.0.1:{receiver_port}/hook"})
        method, path, body, pool = s.workloads[args.workload]
        ids = {"sessions": sessions, "users": users}[pool]
        sent0 = metric(s.port, "webhook_attempts_total") if subscribed else 0
        c0 = cpu_seconds(s.pid())
        r = bench.wrk(s.port, method, path, ids, s.headers, body, args.concurrency, args.seconds, tmp, pid=s.pid())
        us = (cpu_seconds(s.pid()) - c0) / max(r["requests"], 1) * 1e6
        out = {"rps": r["rps"], "cpu_us": round(us, 1), "p99_ms": r["p99_ms"]}
        if subscribed:
            out["delivered_in_run"] = int(metric(s.port, "webhook_attempts_total") - sent0)
            # Drained: no attempt for a whole second (events come only from the requests).
            t = time.perf_counter()
            last, still_since = -1.0, time.perf_counter()
            while time.perf_counter() - t < 120:
                n = metric(s.port, "webhook_attempts_total")
                if n != last:
                    last, still_since = n, time.perf_counter()
                elif time.perf_counter() - still_since >= 1.0:
                    break
                time.sleep(0.1)
            out["drain_s"] = round(still_since - t, 1)
            out["delivered"] = int(last - sent0)
        return out
    finally:
        s.stop()
        s.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="W1", choices=["W1", "W4"])
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    port = bench.free_port()
    receiver = subprocess.Popen(["taskset", "-c", bench.LOAD_CPU, os.path.join(bench.REL, "http-ceiling"),
                                 f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bench.wait_http(port, "/")
        runs = {"no endpoint": [], "one endpoint": []}
        for i in range(args.rounds):
            for name, sub in (("no endpoint", False), ("one endpoint", True)):
                r = one_round(args, sub, port, i)
                runs[name].append(r)
                bench.log(f"round {i + 1} {name}: {r}")
    finally:
        receiver.terminate()
    print(f"{args.workload} c={args.concurrency}, {args.rounds} rounds of {args.seconds} s, {args.backend}")
    base = median([r["rps"] for r in runs["no endpoint"]])
    for name, rs in runs.items():
        rps = median([r["rps"] for r in rs])
        print(f"{name}: req/s {rps} ({rps / base:.2f}x), CPU {median([r['cpu_us'] for r in rs])} us/request, "
              f"p99 {median([r['p99_ms'] for r in rs])} ms (medians; rounds: {rs})")


if __name__ == "__main__":
    main()
