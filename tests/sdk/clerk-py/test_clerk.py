"""The official clerk-backend-api SDK (7.0.0), unchanged, pointed at sessiond, plus wire-level
checks of every response against Clerk's published schemas."""

import base64
import itertools
import json

import pytest
from clerk_backend_api import models
from clerk_backend_api.security import verify_token
from clerk_backend_api.security.types import TokenVerificationError, VerifyTokenOptions

from conftest import SECRET_KEY

_n = itertools.count()


def claims(jwt):
    return json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))


def header(jwt):
    return json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))


def new_user(clerk, **kw):
    email = f"user{next(_n)}@example.com"
    return clerk.users.create(email_address=[email], first_name="Ada", public_metadata={"role": "admin"}, **kw)


def test_users(clerk):
    u = clerk.users.create(email_address=["hopper@example.com"], first_name="Grace", external_id="ext-py",
                           private_metadata={"clearance": 3})
    assert u.id.startswith("user_")
    assert u.email_addresses[0].email_address == "hopper@example.com"
    assert clerk.users.get(user_id=u.id).external_id == "ext-py"
    found = clerk.users.list(request={"email_address": ["hopper@example.com"]})
    assert [x.id for x in found] == [u.id]
    assert clerk.users.list(request={"external_id": ["ext-py"]})[0].id == u.id
    assert clerk.users.count(request={"user_id": [u.id]}).total_count == 1
    assert clerk.users.update(user_id=u.id, last_name="Hopper").last_name == "Hopper"
    with pytest.raises(models.ClerkErrors) as e:
        clerk.users.create(email_address=["HOPPER@example.com"])
    assert e.value.data.errors[0].code == "form_identifier_exists"
    assert clerk.users.delete(user_id=u.id).deleted is True
    with pytest.raises(models.ClerkErrors) as e:
        clerk.users.get(user_id=u.id)
    assert e.value.data.errors[0].code == "resource_not_found"


def test_sessions(clerk):
    u = new_user(clerk)
    s = clerk.sessions.create(request={"user_id": u.id})
    assert s.status == models.Status.ACTIVE
    assert s.user_id == u.id
    assert clerk.sessions.get(session_id=s.id).id == s.id
    s2 = clerk.sessions.create(request={"user_id": u.id})
    listed = clerk.sessions.list(user_id=u.id)
    assert isinstance(listed, list), "the Python SDK receives a bare array"
    assert [x.id for x in listed] == [s2.id, s.id]
    assert [x.id for x in clerk.sessions.list(user_id=u.id, limit=1, offset=1)] == [s.id]
    revoked = clerk.sessions.revoke(session_id=s.id)
    assert revoked.status == models.Status.REVOKED
    assert [x.id for x in clerk.sessions.list(user_id=u.id, status=models.QueryParamStatus.REVOKED)] == [s.id]
    with pytest.raises(models.ClerkErrors) as e:
        clerk.sessions.get(session_id="sess_0000000000000000000000")
    assert e.value.data.errors[0].code == "resource_not_found"
    with pytest.raises(models.ClerkErrors) as e:
        clerk.sessions.list()
    assert e.value.data.errors[0].code == "form_param_missing"


def test_tokens_and_verification(clerk, app_info):
    u = new_user(clerk)
    s = clerk.sessions.create(request={"user_id": u.id})
    t = clerk.sessions.create_token(session_id=s.id)
    c = claims(t.jwt)
    assert (c["sid"], c["sub"], c["v"], c["sts"]) == (s.id, u.id, 2, "active")
    assert c["exp"] - c["iat"] == 60 and c["nbf"] == c["iat"] - 10 and "aud" not in c
    long = clerk.sessions.create_token(session_id=s.id, expires_in_seconds=600)
    assert claims(long.jwt)["exp"] - claims(long.jwt)["iat"] == 600
    verified = verify_token(t.jwt, VerifyTokenOptions(jwt_key=app_info["jwt_public_key"]))
    assert verified["sid"] == s.id
    clerk.sessions.revoke(session_id=s.id)
    with pytest.raises(models.SDKError) as e:
        clerk.sessions.create_token(session_id=s.id)
    assert e.value.status_code == 400 and "session_not_active" in e.value.body


def test_verify_token_via_jwks(clerk, server):
    u = new_user(clerk)
    s = clerk.sessions.create(request={"user_id": u.id})
    t = clerk.sessions.create_token(session_id=s.id)
    opts = VerifyTokenOptions(secret_key=SECRET_KEY, api_url=server.url, api_version="v1")
    assert verify_token(t.jwt, opts)["sub"] == u.id
    tampered = t.jwt[:-4] + ("AAAA" if not t.jwt.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenVerificationError):
        verify_token(tampered, opts)


def test_jwt_templates(clerk, server, app_info):
    u = new_user(clerk, last_name="Lovelace")
    s = clerk.sessions.create(request={"user_id": u.id})
    tpl = clerk.jwt_templates.create(request={"name": "py-hasura", "claims": {}, "lifetime": 90})
    assert tpl.signing_algorithm == "RS256" and tpl.lifetime == 90
    assert any(x.id == tpl.id for x in clerk.jwt_templates.list())
    assert clerk.jwt_templates.get(template_id=tpl.id).name == "py-hasura"
    upd = clerk.jwt_templates.update(template_id=tpl.id, name="py-hasura", claims={}, allowed_clock_skew=30)
    assert upd.allowed_clock_skew == 30
    # clerk-backend-api 7.0.0 models `claims` as an empty pydantic model and always sends {}, so the
    # claims themselves are set over the wire.
    r = server.raw("PATCH", f"/v1/jwt_templates/{tpl.id}", json={"claims": {"role": "{{user.public_metadata.role}}"}})
    assert r.status_code == 200 and r.json()["claims"] == {"role": "{{user.public_metadata.role}}"}
    tok = clerk.sessions.create_token_from_template(session_id=s.id, template_name="py-hasura")
    c = claims(tok.jwt)
    assert c["role"] == "admin" and c["sub"] == u.id and c["nbf"] == c["iat"] - 30 and "sid" not in c
    assert header(tok.jwt)["cat"] == "cl_B7d4PD222AAA"
    assert verify_token(tok.jwt, VerifyTokenOptions(jwt_key=app_info["jwt_public_key"]))["role"] == "admin"
    with pytest.raises(models.ClerkErrors) as e:
        clerk.sessions.create_token_from_template(session_id=s.id, template_name="missing")
    assert e.value.data.errors[0].code == "resource_not_found"
    custom = clerk.jwt_templates.create(request={
        "name": "py-hs", "claims": {"x": 1}, "custom_signing_key": True,
        "signing_algorithm": "HS256", "signing_key": "k" * 40,
    })
    assert custom.custom_signing_key is True and custom.signing_algorithm == "HS256"
    hs = clerk.sessions.create_token_from_template(session_id=s.id, template_name="py-hs")
    assert header(hs.jwt)["alg"] == "HS256"
    assert clerk.jwt_templates.delete(template_id=tpl.id).deleted is True


def test_jwks(clerk):
    keys = clerk.jwks.get_jwks().keys
    assert keys and keys[0].kid.startswith("ins_")


def test_bad_key_is_typed_401(server):
    from clerk_backend_api import Clerk

    bad = Clerk(bearer_auth="sk_test_notarealkeynotarealkeynotarealkey", server_url=server.url + "/v1")
    with pytest.raises(models.ClerkErrors) as e:
        bad.sessions.list(user_id="user_x")
    assert e.value.data.errors[0].code == "clerk_key_invalid"


# ---- wire-level: every shape validated against Clerk's published schemas ----

def test_responses_match_published_schemas(server, schemas):
    r = server.raw("POST", "/v1/users", json={"email_address": ["schema@example.com"], "first_name": "S", "phone_number": ["+14155550100"]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    user = r.json()
    schemas("User", user)
    s = server.raw("POST", "/v1/sessions", json={"user_id": user["id"]}).json()
    schemas("Session", s)
    schemas("Session", server.raw("GET", f"/v1/sessions/{s['id']}").json())
    listed = server.raw("GET", "/v1/sessions", params={"user_id": user["id"]}).json()
    for item in listed:
        schemas("Session", item)
    paged = server.raw("GET", "/v1/sessions", params={"user_id": user["id"], "paginated": "true"}).json()
    assert set(paged) == {"data", "total_count"} and paged["total_count"] == 1
    # Every body form the SDKs send for a body-less POST: none, {} and null.
    for body in (None, b"{}", b"null"):
        tok = server.raw("POST", f"/v1/sessions/{s['id']}/tokens", content=body, headers={"Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "application/json"})
        assert tok.status_code == 200, tok.text
        schemas("Token", tok.json())
    t = server.raw("POST", "/v1/jwt_templates", json={"name": "schema", "claims": {"a": "{{user.id}}"}}).json()
    schemas("JWTTemplate", t)
    schemas("Token", server.raw("POST", f"/v1/sessions/{s['id']}/tokens/schema", json={"expires_in_seconds": None}).json())
    schemas("DeletedObject", server.raw("DELETE", f"/v1/jwt_templates/{t['id']}").json())
    schemas("JWKS", server.raw("GET", "/v1/jwks").json())
    schemas("TotalCount", server.raw("GET", "/v1/users/count").json())
    # Go's SDK sends `null` as the body of a body-less POST, declared JSON.
    schemas("Session", server.raw("POST", f"/v1/sessions/{s['id']}/revoke", content=b"null",
                                  headers={"Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "application/json"}).json())
    undeclared = server.raw("POST", f"/v1/sessions/{s['id']}/revoke", content=b"null",
                            headers={"Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "text/plain"})
    assert undeclared.status_code == 415
    schemas("ClerkErrors", undeclared.json())


@pytest.mark.parametrize("method,path,body,status,code", [
    ("GET", "/v1/sessions/sess_0000000000000000000000", None, 404, "resource_not_found"),
    ("GET", "/v1/sessions/garbage", None, 404, "resource_not_found"),
    ("GET", "/v1/sessions?user_id=user_x&limit=0", None, 422, "form_param_value_invalid"),
    ("GET", "/v1/sessions?user_id=user_x&limit=abc", None, 422, "form_param_type_invalid"),
    ("GET", "/v1/sessions?user_id=user_x&status=sleeping", None, 422, "form_param_value_invalid"),
    ("GET", "/v1/sessions?user_id=user_x&paginated=maybe", None, 422, "form_param_type_invalid"),
    ("GET", "/v1/sessions?user_id=user_x&colour=red", None, 422, "form_param_unknown"),
    ("POST", "/v1/sessions", b"{", 400, "request_body_invalid"),
    ("POST", "/v1/sessions", b"[]", 400, "request_body_invalid"),
    ("POST", "/v1/sessions", b"{}", 422, "form_param_missing"),
    ("POST", "/v1/sessions", b'{"user_id": 5}', 422, "form_param_type_invalid"),
    ("POST", "/v1/sessions", b'{"user_id": "user_0000000000000000000000"}', 404, "resource_not_found"),
    ("POST", "/v1/users", b'{"email_address": ["not-an-email"]}', 422, "form_param_value_invalid"),
    ("POST", "/v1/users", b'{"first_name": "x", "password": "short"}', 422, "form_param_value_invalid"),
    ("POST", "/v1/users", b'{"first_name": "x", "password_digest": "$2b$04$x"}', 422, "form_param_missing"),
    ("POST", "/v1/users", b'{"first_name": "x", "password_digest": "abc", "password_hasher": "md5"}', 422, "form_param_value_invalid"),
    ("POST", "/v1/users", b'{"first_name": "x", "password_digest": "abc", "password_hasher": "bcrypt"}', 422, "form_param_value_invalid"),
    ("POST", "/v1/users", b'{"first_name": "x", "web3_wallet": ["0x0"]}', 422, "form_param_unknown"),
    ("GET", "/v1/users?order_by=-shoe_size", None, 422, "form_param_value_invalid"),
    ("POST", "/v1/users/user_0000000000000000000000/verify_password", b'{}', 422, "form_param_missing"),
    ("PATCH", "/v1/users/user_0000000000000000000000/metadata", b'{"public_metadata": 1}', 422, "form_param_type_invalid"),
    ("POST", "/v1/jwt_templates", b'{"name": "x", "claims": {"iss": "me"}}', 400, "jwt_template_reserved_claim"),
    ("POST", "/v1/jwt_templates", b'{"name": "x", "claims": {}, "lifetime": 5}', 422, "form_param_value_invalid"),
    ("POST", "/v1/jwt_templates", b'{"name": "x", "claims": {}, "custom_signing_key": true, "signing_algorithm": "RS256", "signing_key": "junk"}', 422, "form_param_value_invalid"),
    ("POST", "/v1/sessions/sess_0000000000000000000000/tokens", b'{"expires_in_seconds": 5}', 422, "form_param_value_invalid"),
])
def test_bad_input_is_a_clear_4xx(server, schemas, method, path, body, status, code):
    r = server.raw(method, path, content=body, headers={"Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    schemas("ClerkErrors", r.json())
    assert r.json()["errors"][0]["code"] == code


@pytest.mark.parametrize("auth,code", [(None, "authentication_invalid"), ("Basic x", "authorization_header_format_invalid"), ("Bearer sk_test_nope", "clerk_key_invalid")])
def test_auth_errors(server, schemas, auth, code):
    headers = {"Authorization": auth} if auth else {"X-None": "1"}
    r = server.raw("GET", "/v1/jwks", headers=headers) if auth else __import__("httpx").get(server.url + "/v1/jwks")
    assert r.status_code == 401
    schemas("ClerkErrors", r.json())
    assert r.json()["errors"][0]["code"] == code


def test_tenant_isolation(server, clerk):
    other = server.raw("POST", "/v1/users", json={"first_name": "A"}).json()
    s = server.raw("POST", "/v1/sessions", json={"user_id": other["id"]}).json()
    t = server.raw("POST", "/v1/jwt_templates", json={"name": "iso", "claims": {}}).json()
    import subprocess, os
    # A second application's key sees none of it.
    out = subprocess.run([os.environ["SESSIOND_BIN"], "apps", "create", "Other", "--json"], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], "SESSIOND_DATA_DIR": server._tmp.name + "/data"})
    assert out.returncode == 0, out.stderr
    key_b = json.loads(out.stdout)["secret_key"]
    hb = {"Authorization": f"Bearer {key_b}"}
    for path in (f"/v1/sessions/{s['id']}", f"/v1/users/{other['id']}", f"/v1/jwt_templates/{t['id']}"):
        r = server.raw("GET", path, headers=hb)
        assert r.status_code == 404, (path, r.text)
    assert server.raw("POST", f"/v1/sessions/{s['id']}/revoke", headers=hb).status_code == 404
    assert server.raw("GET", "/v1/sessions", params={"user_id": other["id"]}, headers=hb).json() == []
    assert server.raw("GET", f"/v1/sessions/{s['id']}").json()["status"] == "active"


def test_public_jwks_per_application(server, schemas, app_info):
    import httpx

    r = httpx.get(server.url + app_info["jwks_path"])  # no credentials
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert "max-age=300" in r.headers["cache-control"]
    schemas("JWKS", r.json())
    assert r.json() == server.raw("GET", "/v1/jwks").json()
    missing = httpx.get(server.url + "/v1/apps/app_0000000000000000000000/.well-known/jwks.json")
    assert missing.status_code == 404
    schemas("ClerkErrors", missing.json())


@pytest.mark.parametrize("method,path,body,status,code", [
    ("POST", "/v1/users", b"x" * (1024 * 1024 + 1), 413, "request_body_invalid"),
    ("PUT", "/v1/sessions", None, 405, "method_not_allowed"),
    ("GET", "/v1/sessions/%FF%FE", None, 400, "malformed_request_parameters"),
    ("GET", "/v1/organizations", None, 404, "resource_not_found"),
    ("POST", "/v1/users/user_x/ban", None, 404, "resource_not_found"),
    ("GET", "/v1", None, 404, "resource_not_found"),
], ids=["body-over-1MiB", "wrong-method", "unparseable-path", "route-miss", "route-miss-deep", "prefix-alone"])
def test_framework_rejections_use_clerks_envelope(server, schemas, method, path, body, status, code):
    r = server.raw(method, path, content=body, headers={"Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    schemas("ClerkErrors", r.json())
    assert r.json()["errors"][0]["code"] == code


# ---- users: metadata merge, search and order, passwords; session refresh ----

BCRYPT_OF_IMPORTED = "$2b$04$kmM2jonTvtbZftVapOwAduKgfGNU8lkxgoji0Jvbh.CON9AUd2KjC"  # "imported password"


def test_user_metadata_merge_and_replace(clerk, schemas, server):
    u = clerk.users.create(email_address=[f"meta{next(_n)}@example.com"],
                           public_metadata={"plan": {"tier": "pro", "seats": 5}, "keep": True},
                           private_metadata={"secret": 1, "other": 2})
    merged = clerk.users.update_metadata(user_id=u.id,
                                         public_metadata={"plan": {"seats": None, "trial": False}, "new": [1, 2]},
                                         private_metadata={"secret": None})
    assert merged.public_metadata == {"plan": {"tier": "pro", "trial": False}, "keep": True, "new": [1, 2]}
    assert merged.private_metadata == {"other": 2}
    assert clerk.users.get(user_id=u.id).public_metadata == merged.public_metadata
    # A value that is not an object replaces whatever was there, at any depth.
    again = clerk.users.update_metadata(user_id=u.id, public_metadata={"plan": "free"})
    assert again.public_metadata == {"plan": "free", "keep": True, "new": [1, 2]}
    r = server.raw("PUT", f"/v1/users/{u.id}/metadata", json={"public_metadata": {"only": 1}})
    assert r.status_code == 200, r.text
    schemas("User", r.json())
    assert r.json()["public_metadata"] == {"only": 1} and r.json()["private_metadata"] == {"other": 2}
    with pytest.raises(models.ClerkErrors) as e:
        clerk.users.update_metadata(user_id="user_0000000000000000000000", public_metadata={"a": 1})
    assert e.value.data.errors[0].code == "resource_not_found"


def test_user_query_and_every_order(clerk):
    tag = f"qx{next(_n)}qz"
    zed = clerk.users.create(email_address=[f"{tag}.z@example.com"], first_name="Zed", last_name="Alpha",
                             username=f"{tag}_zed")
    amy = clerk.users.create(email_address=[f"amy.{tag.upper()}@example.com"], first_name="Amy", last_name="Bravo",
                             phone_number=["+1 555 010 7788"])
    bob = clerk.users.create(email_address=["bob@elsewhere.org"], first_name="Bob", external_id=f"ext-{tag}")
    ids = lambda users: [x.id for x in users]
    assert ids(clerk.users.list(request={"query": tag.upper(), "order_by": "+first_name"})) == [amy.id, bob.id, zed.id]
    assert ids(clerk.users.list(request={"query": tag, "order_by": "first_name"})) == [amy.id, bob.id, zed.id]
    assert ids(clerk.users.list(request={"query": tag, "order_by": "-first_name", "limit": 2, "offset": 1})) == [bob.id, amy.id]
    assert clerk.users.count(request={"query": tag}).total_count == 3
    assert ids(clerk.users.list(request={"query": "555 010 77"})) == [amy.id], "phone digits match"
    assert ids(clerk.users.list(request={"query": bob.id})) == [bob.id], "user id matches"
    assert ids(clerk.users.list(request={"query": f"{tag}", "name_query": "zed alp"})) == [zed.id]
    assert ids(clerk.users.list(request={"username_query": f"{tag}_Z"})) == [zed.id]
    assert ids(clerk.users.list(request={"email_address_query": f"AMY.{tag}"})) == [amy.id]
    assert ids(clerk.users.list(request={"query": f"{tag}", "phone_number_query": "7788"})) == [amy.id]
    assert clerk.users.list(request={"query": "no-such-user-anywhere"}) == []
    # Newest first by default; every documented field in both directions is served.
    assert ids(clerk.users.list(request={"query": tag})) == [bob.id, amy.id, zed.id]
    assert ids(clerk.users.list(request={"query": tag, "order_by": "+created_at"})) == [zed.id, amy.id, bob.id]
    assert ids(clerk.users.list(request={"query": tag, "order_by": "-last_name"}))[:2] == [amy.id, zed.id]
    for field in ("created_at", "updated_at", "email_address", "first_name", "last_name", "phone_number",
                  "username", "last_active_at", "last_sign_in_at"):
        for sign in ("+", "-", ""):
            listed = clerk.users.list(request={"query": tag, "order_by": sign + field})
            assert sorted(ids(listed)) == sorted([zed.id, amy.id, bob.id]), (sign, field)
    clerk.users.update(user_id=zed.id, first_name="Zed")
    assert ids(clerk.users.list(request={"query": tag, "order_by": "-updated_at", "limit": 1})) == [zed.id]


def test_passwords_and_verify_password(clerk, server):
    u = clerk.users.create(email_address=[f"pw{next(_n)}@example.com"], password="correct horse battery")
    assert u.password_enabled is True
    assert clerk.users.verify_password(user_id=u.id, password="correct horse battery").verified is True
    # The SDK types 400/404/422 of this operation as SDKError with the body as text.
    with pytest.raises(models.SDKError) as e:
        clerk.users.verify_password(user_id=u.id, password="correct horse batterY")
    assert e.value.status_code == 422 and json.loads(e.value.body)["errors"][0]["code"] == "form_password_incorrect"
    # An imported bcrypt digest verifies, and keeps verifying once re-hashed with Argon2id.
    imported = clerk.users.create(email_address=[f"pw{next(_n)}@example.com"],
                                  password_digest=BCRYPT_OF_IMPORTED, password_hasher="bcrypt")
    assert imported.password_enabled is True
    for _ in range(2):
        assert clerk.users.verify_password(user_id=imported.id, password="imported password").verified is True
    with pytest.raises(models.SDKError) as e:
        clerk.users.verify_password(user_id=imported.id, password="imported passworD")
    assert e.value.status_code == 422
    # No password: 400.
    plain = new_user(clerk)
    assert plain.password_enabled is False
    r = server.raw("POST", f"/v1/users/{plain.id}/verify_password", json={"password": "anything at all"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "password_not_set"
    # Changing the password with sign_out_of_other_sessions revokes the user's sessions.
    s = clerk.sessions.create(request={"user_id": u.id})
    clerk.users.update(user_id=u.id, password="a brand new secret", sign_out_of_other_sessions=True)
    assert clerk.sessions.get(session_id=s.id).status == models.Status.REVOKED
    assert clerk.users.verify_password(user_id=u.id, password="a brand new secret").verified is True
    # skip_password_checks waives the minimum length, for imports of legacy passwords.
    short = clerk.users.create(email_address=[f"pw{next(_n)}@example.com"], password="abc", skip_password_checks=True)
    assert clerk.users.verify_password(user_id=short.id, password="abc").verified is True


def test_session_refresh(clerk):
    u = new_user(clerk)
    s = clerk.sessions.create(request={"user_id": u.id})
    old = clerk.sessions.create_token(session_id=s.id).jwt
    r = clerk.sessions.refresh(session_id=s.id, expired_token=old, refresh_token="unused-here",
                               request_origin="https://app.example.com")
    assert r.object == "token" and r.jwt != old
    assert claims(r.jwt)["sid"] == s.id and claims(r.jwt)["sub"] == u.id
    c = clerk.sessions.refresh(session_id=s.id, expired_token=old, refresh_token="unused-here",
                               request_origin="https://app.example.com", format_=models.Format.COOKIE)
    assert c.object == "cookies" and c.cookies[0].startswith("__session=") and "; Secure" in c.cookies[0]
    other = clerk.sessions.create(request={"user_id": u.id})
    for sid, token in ((other.id, old), (s.id, old[:-3] + "abc"), (s.id, "not-a-jwt")):
        with pytest.raises((models.ClerkErrors, models.SDKError)) as e:
            clerk.sessions.refresh(session_id=sid, expired_token=token, refresh_token="x",
                                   request_origin="https://app.example.com")
        assert status_of(e.value) == 401, (sid, token)
    clerk.sessions.revoke(session_id=s.id)
    with pytest.raises((models.ClerkErrors, models.SDKError)) as e:
        clerk.sessions.refresh(session_id=s.id, expired_token=old, refresh_token="x",
                               request_origin="https://app.example.com")
    assert status_of(e.value) == 401


def status_of(err):
    return err.status_code if isinstance(err, models.SDKError) else err.raw_response.status_code
