"""Fixtures: a spawned sessiond and validators for Clerk's published OpenAPI schemas."""

import os
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "support"))
import schemas as schemas_mod  # noqa: E402
import sessiond_server  # noqa: E402

import httpx
import pytest

SECRET_KEY = "sk_test_9ec781ff750432c140a02afe71dfe7cccb68a864d286c05cde3176398f59138a"


@pytest.fixture(scope="session")
def schemas():
    return schemas_mod.checker("clerk/bapi-2026-05-12.json")


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
