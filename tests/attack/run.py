"""The attack suite: schemathesis fuzzes a spawned sessiond with sessiond's own OpenAPI document
and with the vendors' documents of the operations sessiond serves (Clerk Backend API, Trinsic
Connect 1.2.0, Trinsic API 2.1.0; reduced copies in specs/, see scripts/reduce-vendor-schemas).

    python run.py [--deep]

Checks: no 5xx from any document; against sessiond's own document, additionally every response
matches its declared schema. Each target must run at least MIN_CASES generated cases. The server's
log is searched for panics afterwards. Each application is seeded with real objects (users,
sessions, templates, verifications) whose ids schemathesis draws path parameters from half the
time, so cases reach past "not found".

CI mode uses fixed seeds (a failure reproduces with the printed seed); --deep (or
SESSIOND_ATTACK_DEEP=1) runs ten times the examples with fresh seeds.

Needs SESSIOND_BIN (the sessiond binary) and schemathesis (pinned in requirements.txt).
"""

import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
import sessiond_server  # noqa: E402
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SPECS = HERE / "specs"
MIN_CASES = 500
CI_SEED = 20261206

# (name, document, base path, checks, examples per operation in CI mode)
OWN_CHECKS = "not_a_server_error,response_schema_conformance"
TARGETS = [
    ("sessiond", None, "", OWN_CHECKS, 12),
    ("clerk", "clerk-bapi-2026-05-12.json", "/v1", "not_a_server_error", 30),
    ("trinsic-connect", "trinsic-connect-1.2.0.json", "", "not_a_server_error", 60),
    ("trinsic-api", "trinsic-api-2.1.0.json", "", "not_a_server_error", 50),
]


def cli(binary, env, *args):
    return subprocess.run([binary, *args], env=env, check=True, capture_output=True, text=True).stdout


def call(url, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    return json.loads(text) if text else None


def start(tmp, binary):
    data = os.path.join(tmp, "data")
    env = {"PATH": os.environ.get("PATH", ""), "SESSIOND_DATA_DIR": data, "SESSIOND_LOG_FORMAT": "json"}
    apps = {}
    for name, gen in (("sessiond", "api"), ("clerk", None), ("trinsic-connect", "connect"), ("trinsic-api", "api")):
        created = json.loads(cli(binary, env, "apps", "create", f"attack-{name}", "--json"))
        if gen:
            cli(binary, env, "apps", "update", created["id"], "--trinsic-generation", gen, "--json")
        apps[name] = created["secret_key"]
    log = open(os.path.join(tmp, "server.log"), "w")
    lines = []
    proc, url = sessiond_server.serve(binary, env, stderr=log, lines=lines)
    return proc, url, apps, lines


def seed_objects(url, apps):
    """Real objects for each target, as schemathesis dictionaries (name -> values)."""
    out = {}
    for name, key in apps.items():
        users, sessions, templates, verifications = [], [], [], []
        if name in ("sessiond", "clerk"):
            for i in range(3):
                u = call(url, key, "POST", "/v1/users",
                         {"external_id": f"{name}-ext-{i}", "email_address": [f"{name}{i}@example.org"],
                          "password": "correct horse battery"})
                users.append(u["id"])
                s = call(url, key, "POST", "/v1/sessions", {"user_id": u["id"]})
                sessions.append(s["id"])
            t = call(url, key, "POST", "/v1/jwt_templates", {"name": f"{name}-tpl", "claims": {"r": "x"}})
            templates += [t["id"], t["name"]]
        if name == "sessiond":
            for i in range(2):
                s = call(url, key, "POST", "/sessions", {"userUuid": f"{name}-ext-{i}"})
                sessions.append(s["sessionId"])
                call(url, key, "PUT", f"/sessions/{s['sessionId']}/tokens/sso", "vault-value")
        if name == "trinsic-connect":
            for _ in range(3):
                v = call(url, key, "POST", "/api/v1/sessions", {})
                verifications.append(v["session"]["id"])
        if name in ("trinsic-api", "sessiond"):
            for _ in range(3):
                v = call(url, key, "POST", "/api/v1/sessions/widget", {})
                verifications.append(v["sessionId"])
        out[name] = {"users": users, "sessions": sessions, "templates": templates,
                     "verifications": verifications, "tokens": ["sso", "other"]}
    return out


# Path parameter names of each document, and which dictionary feeds them.
BINDINGS = {
    "user_id": "users", "session_id": "sessions", "template_id": "templates", "template_name": "templates",
    "uuid": "sessions", "sessionId": "verifications", "acceptanceSessionId": "verifications",
    "tokenId": "tokens",
}


def config_file(tmp, name, objects):
    lines = []
    used = {}
    for param, dictionary in BINDINGS.items():
        values = objects.get(dictionary) or []
        if values:
            used[dictionary] = values
            lines.append(f'"path.{param}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    text = ""
    for dictionary, values in used.items():
        text += f"[dictionaries.{dictionary}]\nvalues = {json.dumps(values)}\n\n"
    text += "[parameters]\n" + "\n".join(lines) + "\n"
    path = pathlib.Path(tmp) / f"{name}.toml"
    path.write_text(text)
    return path


def run_target(st, tmp, url, key, name, document, base, checks, examples, seed, objects):
    if document is None:
        spec = pathlib.Path(tmp) / "sessiond-openapi.json"
        with urllib.request.urlopen(url + "/openapi.json", timeout=10) as resp:
            spec.write_bytes(resp.read())
    else:
        spec = SPECS / document
    cfg = config_file(tmp, name, objects)
    cmd = [st, "--config-file", str(cfg), "run", str(spec), "--url", url + base,
           "-H", f"Authorization: Bearer {key}", "--checks", checks,
           "--max-examples", str(examples), "--seed", str(seed), "--no-color",
           "--request-timeout", "10"]
    started = time.time()
    # In the temporary directory: schemathesis keeps a cache where it runs.
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    took = time.time() - started
    text = out.stdout + out.stderr
    m = re.search(r"(\d+) generated", text)
    cases = int(m.group(1)) if m else 0
    five = len(re.findall(r"\[5\d\d\]", text))
    ok = out.returncode == 0 and cases >= MIN_CASES
    print(f"attack {name}: {cases} cases in {took:.0f} s, seed {seed}, checks {checks}: "
          f"{'ok' if ok else 'FAILED'} (schemathesis exit {out.returncode}, {five} 5xx shown)", flush=True)
    if not ok:
        print(text[-20000:], flush=True)
        if cases < MIN_CASES:
            print(f"attack {name}: fewer than {MIN_CASES} cases", flush=True)
    return ok


def main(argv):
    deep = "--deep" in argv or os.environ.get("SESSIOND_ATTACK_DEEP") == "1"
    binary = os.environ.get("SESSIOND_BIN")
    if not binary:
        sys.exit("SESSIOND_BIN must point at the sessiond binary")
    st = str(pathlib.Path(sys.executable).parent / "st")
    status = 0
    with tempfile.TemporaryDirectory(prefix="sessiond-attack-") as tmp:
        proc, url, apps, lines = start(tmp, binary)
        try:
            objects = seed_objects(url, apps)
            for name, document, base, checks, examples in TARGETS:
                seed = random.randrange(1 << 62) if deep else CI_SEED
                n = examples * 10 if deep else examples
                if not run_target(st, tmp, url, apps[name], name, document, base, checks, n, seed, objects[name]):
                    status = 1
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        log = pathlib.Path(tmp, "server.log").read_text() + "".join(lines)
        panics = [l for l in log.splitlines() if "panicked" in l]
        if panics:
            print("attack: the server panicked:\n" + "\n".join(panics[:20]), flush=True)
            status = 1
        if code != 0:
            print(f"attack: the server exited with {code} on SIGTERM", flush=True)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
