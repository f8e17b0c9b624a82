"""Shared fixtures of the Trinsic SDK suites: the server (shared, or spawned when run alone),
a browser that walks the hosted pages over HTTP, and validators for Trinsic's published specs."""

import json
import os
import pathlib
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from http.cookiejar import CookieJar

import pytest
import trinsic_api

import harness  # first: it puts tests/support on the path
import schemas


def checker(spec_file):
    """A validator for one published Trinsic document, e.g. `checker("api-2.1.0")`."""
    return schemas.checker(f"trinsic/{spec_file}.json")


@pytest.fixture(scope="session")
def env():
    path = os.environ.get("SESSIOND_TRINSIC_ENV")
    if path:
        yield json.loads(pathlib.Path(path).read_text())
        return
    with tempfile.TemporaryDirectory(prefix="sessiond-trinsic-") as tmp:
        proc, info = harness.start(tmp)
        try:
            yield info
        finally:
            harness.stop(proc)


@pytest.fixture(scope="module")
def client(env, request):
    """An SDK client holding the secret key of the test module's application (its `APP`)."""
    key = env["apps"][request.module.APP]["secret_key"]
    return trinsic_api.ApiClient(trinsic_api.Configuration(host=env["url"], access_token=key))


@pytest.fixture(scope="module")
def sessions(client):
    return trinsic_api.SessionsApi(client)


def session_results(sessions, check, sid, key):
    """A session's results twice: the raw body, checked against the published schema, and the
    SDK's model of it."""
    request = trinsic_api.models.GetSessionResultRequest(results_access_key=key)
    raw = raw_json(sessions.get_session_result_without_preload_content(sid, request))
    check("GetSessionResultResponse", raw)
    return sessions.get_session_result(sid, request), raw


def raw_json(resp):
    """The body of a `*_without_preload_content` response, parsed, after checking the type."""
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), ctype
    return json.loads(resp.data)


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []
        self.result = None
        self.links = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method", "get"), "hidden": {},
                               "inputs": [], "buttons": []})
        elif tag == "input" and self.forms:
            if a.get("type") == "hidden":
                self.forms[-1]["hidden"][a["name"]] = a.get("value", "")
            else:
                self.forms[-1]["inputs"].append(a)
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append((a.get("name"), a.get("value")))
        elif tag == "div" and a.get("id") == "sessiond-result":
            self.result = {"target": a["data-target"], "message": json.loads(a["data-message"]),
                           "origins": json.loads(a["data-origins"])}
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Page:
    def __init__(self, url, status, headers, body):
        self.url, self.status, self.headers, self.body = url, status, headers, body
        p = _Forms()
        p.feed(body)
        self.forms, self.result, self.links = p.forms, p.result, p.links

    def form(self, action):
        for f in self.forms:
            if f["hidden"].get("action") == action:
                return f
        raise AssertionError(f"no form for {action!r} on {self.url}: {self.body[:400]}")

    @property
    def location(self):
        return self.headers.get("Location")


class Browser:
    """A user agent with its own cookies that never follows redirects (tests read them)."""

    def __init__(self, base):
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def _open(self, req):
        try:
            r = self.opener.open(req, timeout=30)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read().decode()
        return Page(req.full_url, r.status if hasattr(r, "status") else r.code, r.headers, body)

    def get(self, url):
        return self._open(urllib.request.Request(url))

    def post(self, url, fields):
        data = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"}))

    def submit(self, page, action, **fields):
        f = page.form(action)
        target = urllib.parse.urljoin(page.url, f["action"] or page.url)
        return self.post(target, {**f["hidden"], **fields})


@pytest.fixture
def browser(env):
    return Browser(env["url"])


def redirect_params(location):
    parts = urllib.parse.urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", dict(urllib.parse.parse_qsl(parts.query))


def database_bytes(env):
    """Everything sessiond has on disk: the SQLite file and its WAL/shared-memory files."""
    out = b""
    for name in ("sessiond.db", "sessiond.db-wal", "sessiond.db-shm"):
        p = pathlib.Path(env["data_dir"]) / name
        if p.exists():
            out += p.read_bytes()
    return out


def sealed_blobs(env, session_id):
    """The sealed result and attachment blobs of one session, read straight from SQLite."""
    import sqlite3

    db = sqlite3.connect(f"file:{env['data_dir']}/sessiond.db?mode=ro", uri=True)
    try:
        row = db.execute("SELECT results_sealed FROM verification_sessions WHERE id = ?", (session_id,)).fetchone()
        blobs = [row[0]] if row and row[0] else []
        blobs += [r[0] for r in db.execute(
            "SELECT sealed FROM verification_attachments WHERE verification_id = ?", (session_id,))]
        return blobs
    finally:
        db.close()


LAUNCH_RE = re.compile(r"^http://127\.0\.0\.1:\d+/verify/launch\?t=[A-Za-z0-9_-]+$")
