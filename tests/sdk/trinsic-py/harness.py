"""Starts one sessiond with two applications — one answering as Trinsic Connect (generation A),
one as the Trinsic API (generation B) — and runs the given test commands against it.

    python harness.py "<command for generation A>" "<command for generation B>"

Each command sees SESSIOND_TRINSIC_ENV, the path of a JSON file with the server URL, both
applications' secret keys and the data directory (the tests inspect the database files).
Standard library only, so any of the SDK environments can run it.
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "support"))
import sessiond_server  # noqa: E402

RP_ORIGIN = "https://rp.example"


def _cli(binary, env, *args):
    out = subprocess.run([binary, *args], env=env, check=True, capture_output=True, text=True)
    return out.stdout


def start(tmpdir):
    binary = os.environ.get("SESSIOND_BIN")
    if not binary:
        raise RuntimeError("SESSIOND_BIN must point at the sessiond binary")
    data = os.path.join(tmpdir, "data")
    env = {"PATH": os.environ.get("PATH", ""), "SESSIOND_DATA_DIR": data, "SESSIOND_LOG_FORMAT": "json"}
    apps = {}
    for gen in ("connect", "api"):
        created = json.loads(_cli(binary, env, "apps", "create", f"trinsic-{gen}-rp", "--json"))
        _cli(binary, env, "apps", "update", created["id"], "--trinsic-generation", gen,
             "--allowed-redirect-origin", RP_ORIGIN, "--json")
        apps[gen] = {"id": created["id"], "secret_key": created["secret_key"]}
    proc, url = sessiond_server.serve(binary, env)
    return proc, {"url": url, "apps": apps, "data_dir": data, "rp_origin": RP_ORIGIN}


def stop(proc):
    sessiond_server.stop(proc)


def main(commands):
    status = 0
    with tempfile.TemporaryDirectory(prefix="sessiond-trinsic-") as tmp:
        proc, info = start(tmp)
        env_file = pathlib.Path(tmp) / "env.json"
        env_file.write_text(json.dumps(info))
        try:
            for cmd in commands:
                rc = subprocess.call(shlex.split(cmd), env={**os.environ, "SESSIOND_TRINSIC_ENV": str(env_file)})
                status = status or rc
        finally:
            stop(proc)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
