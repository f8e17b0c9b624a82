"""Fixtures: a spawned sessiond and validators for Clerk's published OpenAPI schemas."""

import json
import os
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "support"))
import sessiond_server  # noqa: E402

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SECRET_KEY = "sk_test_9ec781ff750432c140a02afe71dfe7cccb68a864d286c05cde3176398f59138a"
# Clerk's published component schemas, reduced to their structure (tests/schemas/README.md).
SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "clerk" / "bapi-2026-05-12.json"


@pytest.fixture(scope="session")
def schemas():
    doc = json.loads(SCHEMAS.read_text())
    registry = Registry().with_resource("urn:clerk", Resource.from_contents(doc))

    def check(name, instance):
        schema = {"$ref": f"urn:clerk#/$defs/{name}"}
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
    proc, url = sessiond_server.serve(binary, env)
    yield Server(url, proc, tmp)
    sessiond_server.stop(proc)
    tmp.cleanup()


@pytest.fixture(scope="session")
def clerk(server):
    from clerk_backend_api import Clerk

    return Clerk(bearer_auth=SECRET_KEY, server_url=server.url + "/v1")


@pytest.fixture(scope="session")
def app_info(server):
    return server.raw("GET", "/sessiond/v1/application").json()
