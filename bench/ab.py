#!/usr/bin/env python3
"""Two sessiond builds on one workload, interleaved, in one invocation:

  python3 bench/ab.py DIR_A DIR_B [--workload W1] [--concurrency 32] [--seconds 8] [--rounds 3]
                      [--backend sqlite|postgres] [--aged | --idle 61] [--sessions 20000]

DIR_A and DIR_B hold a `sessiond` binary each (say, a worktree's target/release and this
checkout's). Each round starts a fresh instance of A, then of B (SQLite, or a fresh database on the
local PostgreSQL with --backend postgres), seeds 20,000 sessions (--sessions) for
one user in 20 through the API, and loads it with wrk pinned as in bench/run. Rounds alternate, so a
machine that slows down during the run slows both. Printed per build: requests per second, the
server's CPU time per request (user + system over all its threads, from /proc; steadier than
throughput on a shared machine) and p99, each round and the median.

--aged and --idle both make the first read of each session (W2, W6) record activity with a write,
as in bench/run. --aged moves the activity back with SQL from outside, which also empties the
hot-session cache (another process committed); --idle waits instead, so the cache holds what
the server's own writes left in it, as it does in bench/run.
"""

import argparse
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def cpu_seconds(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def start(rel, args, seed):
    """A seeded instance of the build in `rel`: (server, its temporary dir, the ids wrk picks from)."""
    bench.REL = rel
    tmp = tempfile.mkdtemp(prefix="bench-ab-")
    s = bench.Sessiond("ab", args.backend, tmp)
    s.start()
    try:
        sessions, users = s.seed(args.sessions, max(1, args.sessions // 20))
        if args.aged:
            s.age_sessions(3_600)
        random.Random(seed).shuffle(sessions)
        pool = s.workloads[args.workload][3]
        return s, tmp, {"sessions": sessions, "users": users}[pool]
    except BaseException:
        stop(s)
        raise


def stop(s):
    s.stop()
    s.cleanup()


def load(s, tmp, ids, args):
    try:
        method, path, body, _ = s.workloads[args.workload]
        c0 = cpu_seconds(s.pid())
        r = bench.wrk(s.port, method, path, ids, s.headers, body, args.concurrency, args.seconds, tmp, pid=s.pid())
        us = (cpu_seconds(s.pid()) - c0) / max(r["requests"], 1) * 1e6
        return {"rps": r["rps"], "cpu_us": round(us, 1), "p99_ms": r["p99_ms"]}
    finally:
        stop(s)


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
    ap.add_argument("--idle", type=int, default=0, metavar="SECS",
                    help="after seeding, leave the sessions alone this long before the load (61: past the "
                         "touch window, so the first read of each records activity, as in bench/run); both "
                         "builds are seeded first and wait together")
    args = ap.parse_args()
    if args.aged and args.idle:
        ap.error("--aged and --idle are two ways to the same state; pick one")
    runs = {"A": [], "B": []}
    builds = (("A", args.a), ("B", args.b))
    for i in range(args.rounds):
        if args.idle:
            started = []
            try:
                for name, rel in builds:
                    started.append((name, *start(rel, args, i)))
            except BaseException:
                for _, s, _, _ in started:
                    stop(s)
                raise
            bench.log(f"round {i + 1}: seeded both, waiting {args.idle} s")
            time.sleep(args.idle)
            for k, (name, s, tmp, ids) in enumerate(started):
                try:
                    r = load(s, tmp, ids, args)
                except BaseException:
                    for _, rest, _, _ in started[k + 1:]:
                        stop(rest)
                    raise
                runs[name].append(r)
                bench.log(f"round {i + 1} {name}: {r}")
            continue
        for name, rel in builds:
            r = load(*start(rel, args, i), args)
            runs[name].append(r)
            bench.log(f"round {i + 1} {name}: {r}")
    print(f"{args.workload} c={args.concurrency} on {args.backend}, {args.rounds} rounds of {args.seconds} s")
    for name, rel in (("A", args.a), ("B", args.b)):
        rs = runs[name]
        print(f"{name} ({rel}): req/s {median([r['rps'] for r in rs])}, CPU {median([r['cpu_us'] for r in rs])} us/request, "
              f"p99 {median([r['p99_ms'] for r in rs])} ms (medians; rounds: {rs})")


if __name__ == "__main__":
    main()
