"""Fixtures: a spawned sessiond and validators for Clerk's published OpenAPI schemas."""

import copy
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import threading
import time

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SECRET_KEY = "sk_test_sdkpy0123456789abcdefghijklmnopqrstu"
SPEC = pathlib.Path(__file__).resolve().parents[3] / ".." / "shared" / "specs" / "clerk" / "bapi-2026-05-12.yml"


def _to_json_schema(node):
    """OpenAPI 3.0 schemas use `nullable`; JSON Schema spells it as a null type."""
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if not k.startswith("x-")}
    if out.pop("nullable", False):
        if any(k in out for k in ("oneOf", "anyOf", "allOf", "$ref")):
            out = {"anyOf": [out, {"type": "null"}]}
        elif "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="session")
def schemas():
    spec = yaml.safe_load(SPEC.read_text())
    doc = {"components": {"schemas": _to_json_schema(spec["components"]["schemas"])}}
    resource = Resource.from_contents({"$schema": "https://json-schema.org/draft/2020-12/schema", **doc})
    registry = Registry().with_resource("urn:clerk", resource)

    def check(name, instance):
        schema = {"$ref": f"urn:clerk#/components/schemas/{name}"}
        errors = sorted(Draft202012Validator(schema, registry=registry).iter_errors(instance), key=str)
        assert not errors, f"{name} schema violations: " + "; ".join(e.message for e in errors[:5])

    return check


class Server:
    def __init__(self, url, proc, tmp):
        self.url = url
        self._proc = proc
        self._tmp = tmp

    def raw(self, method, path, **kw):
        headers = kw.pop("headers", {})
        headers.setdefault("Authorization", f"Bearer {SECRET_KEY}")
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("SESSIOND_BIN")
    assert binary, "SESSIOND_BIN must point at the sessiond binary"
    tmp = tempfile.TemporaryDirectory(prefix="sessiond-clerk-py-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SESSIOND_DATA_DIR": os.path.join(tmp.name, "data"),
        "SESSIOND_BOOTSTRAP_SECRET_KEY": SECRET_KEY,
    }
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = None
    deadline = time.time() + 60
    while url is None and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sessiond exited with {proc.wait()}")
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "listening":
            url = "http://" + entry["addr"]
    assert url, "sessiond did not start"
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    yield Server(url, proc, tmp)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    tmp.cleanup()


@pytest.fixture(scope="session")
def clerk(server):
    from clerk_backend_api import Clerk

    return Clerk(bearer_auth=SECRET_KEY, server_url=server.url + "/v1")


@pytest.fixture(scope="session")
def app_info(server):
    return server.raw("GET", "/sessiond/v1/application").json()
