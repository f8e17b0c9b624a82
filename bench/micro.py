#!/usr/bin/env python3
"""Focused single-client measurements of one sessiond binary (not a side-by-side benchmark):

  python3 bench/micro.py [RELEASE_DIR]

W5: DELETE /users/{id}/sessions for 200 users holding 40 sessions each, one request at a time
(p50 and mean latency). W7: purge of 100,000 expired sessions inserted through SQL (seconds).
Revoke-all: Clerk's password change with `sign_out_of_other_sessions` for a user holding 1,000
sessions, three users in turn, on SQLite and on the local PostgreSQL (milliseconds each).
RELEASE_DIR defaults to this checkout's target/release; point it at another build to compare.
"""

import http.client
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    if len(sys.argv) > 1:
        bench.REL = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="bench-micro-")
    s = bench.Sessiond("micro", "sqlite", tmp)
    s.start()
    try:
        users = [u["id"] for u in bench.parallel(s.port, s.headers, [("POST", "/v1/users", {"first_name": f"u{i}"}) for i in range(200)])]
        bench.parallel(s.port, s.headers, [("POST", "/v1/sessions", {"user_id": users[i % 200]}) for i in range(8000)])
        conn = http.client.HTTPConnection("127.0.0.1", s.port)
        lat = []
        for u in users:
            t = time.perf_counter()
            conn.request("DELETE", f"/users/{u}/sessions", headers=s.headers)
            conn.getresponse().read()
            lat.append(time.perf_counter() - t)
        lat.sort()
        print(f"W5 (40 sessions per user, c=1): p50 {lat[len(lat) // 2] * 1000:.2f} ms, mean {sum(lat) / len(lat) * 1000:.2f} ms")
        s.bulk_insert(100_000)
        n, secs = s.purge(100_000)
        print(f"W7: purged {n} expired sessions in {secs:.3f} s")
    finally:
        s.stop()
        s.cleanup()
    for backend in ("sqlite", "postgres"):
        revoke_all(backend)


def revoke_all(backend, sessions=1_000, rounds=3):
    """Revokes every session of a user at once (Clerk), `rounds` times with a fresh user."""
    tmp = tempfile.mkdtemp(prefix="bench-micro-")
    s = bench.Sessiond("micro", backend, tmp)
    s.start()
    try:
        took = []
        for _ in range(rounds):
            _, (user,) = s.seed(sessions, 1)
            client = bench.Client(s.port, s.headers)
            t = time.perf_counter()
            client.call("PATCH", f"/v1/users/{user}", {"password": "a brand new secret 123", "sign_out_of_other_sessions": True})
            took.append((time.perf_counter() - t) * 1000)
            left = client.call("GET", f"/v1/sessions?user_id={user}&status=active&limit=1")
            if (left if isinstance(left, list) else left.get("data")):
                raise SystemExit(f"revoke-all left active sessions: {left}")
        print(f"revoke-all ({backend}, {sessions} sessions, c=1): " + ", ".join(f"{ms:.0f} ms" for ms in took))
    finally:
        s.stop()
        s.cleanup()


if __name__ == "__main__":
    main()
