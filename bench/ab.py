#!/usr/bin/env python3
"""Two sessiond builds on one workload, interleaved, in one invocation:

  python3 bench/ab.py DIR_A DIR_B [--workload W1] [--concurrency 32] [--seconds 8] [--rounds 3]
                      [--backend sqlite|postgres] [--aged] [--sessions 20000]

DIR_A and DIR_B hold a `sessiond` binary each (say, a worktree's target/release and this
checkout's). Each round starts a fresh instance of A, then of B (SQLite, or a fresh database on the
local PostgreSQL with --backend postgres), seeds 20,000 sessions (--sessions) for
one user in 20 through the API, and loads it with wrk pinned as in bench/run. Rounds alternate, so a
machine that slows down during the run slows both. Printed per build: requests per second, the
server's CPU time per request (user + system over all its threads, from /proc; steadier than
throughput on a shared machine) and p99, each round and the median.
"""

import argparse
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def cpu_seconds(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def one_round(rel, args, seed):
    bench.REL = rel
    tmp = tempfile.mkdtemp(prefix="bench-ab-")
    s = bench.Sessiond("ab", args.backend, tmp)
    s.start()
    try:
        sessions, users = s.seed(args.sessions, max(1, args.sessions // 20))
        if args.aged:
            s.age_sessions(3_600)
        random.Random(seed).shuffle(sessions)
        method, path, body, pool = s.workloads[args.workload]
        ids = {"sessions": sessions, "users": users}[pool]
        c0 = cpu_seconds(s.pid())
        r = bench.wrk(s.port, method, path, ids, s.headers, body, args.concurrency, args.seconds, tmp, pid=s.pid())
        us = (cpu_seconds(s.pid()) - c0) / max(r["requests"], 1) * 1e6
        return {"rps": r["rps"], "cpu_us": round(us, 1), "p99_ms": r["p99_ms"]}
    finally:
        s.stop()
        s.cleanup()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--workload", default="W1", choices=sorted(bench.Sessiond.workloads))
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    ap.add_argument("--sessions", type=int, default=20_000,
                    help="sessions seeded per round, for one user in 20 (bench/run seeds 100,000)")
    ap.add_argument("--aged", action="store_true",
                    help="move the seeded sessions' last activity an hour back, so the first read of each "
                         "(W2, W6) records activity with a write, as in bench/run, where seeding ends over a "
                         "minute before those runs")
    args = ap.parse_args()
    runs = {"A": [], "B": []}
    for i in range(args.rounds):
        for name, rel in (("A", args.a), ("B", args.b)):
            r = one_round(rel, args, i)
            runs[name].append(r)
            bench.log(f"round {i + 1} {name}: {r}")
    print(f"{args.workload} c={args.concurrency} on {args.backend}, {args.rounds} rounds of {args.seconds} s")
    for name, rel in (("A", args.a), ("B", args.b)):
        rs = runs[name]
        print(f"{name} ({rel}): req/s {median([r['rps'] for r in rs])}, CPU {median([r['cpu_us'] for r in rs])} us/request, "
              f"p99 {median([r['p99_ms'] for r in rs])} ms (medians; rounds: {rs})")


if __name__ == "__main__":
    main()
