"""Generation A (Trinsic Connect) with the official SDK, trinsic-api==1.2.0, unchanged."""

import base64
import json
import time

import pytest
import trinsic_api
from trinsic_api import ApiClient, AttachmentsApi, Configuration, NetworkApi, SessionsApi
from trinsic_api.exceptions import BadRequestException, NotFoundException, UnauthorizedException
from trinsic_api.models import (
    CreateSessionRequest,
    DisclosedFieldsRequest,
    GetAttachmentRequest,
    GetSessionResultRequest,
    KnownIdentityData,
    KnownPersonData,
    OrderDirection,
    RecommendRequest,
    SessionOrdering,
)

from conftest import LAUNCH_RE, checker, session_results, database_bytes, raw_json, redirect_params, sealed_blobs

DB = "trinsic-test-database-lookup"
SUB = "trinsic-test-sub-providers"
APP = "connect"
check = checker("connect-1.2.0")


def test_sdk_generation():
    assert trinsic_api.__version__ == "1.2.0"


def results(sessions, sid, key):
    return session_results(sessions, check, sid, key)


def test_direct_launch_redirect_flow_with_disclosure(env, sessions, client, browser):
    req = CreateSessionRequest(
        providers=[DB], launch_provider_directly=True,
        known_identity_data=KnownIdentityData(person=KnownPersonData(given_name="Hintina", phone_number="+15555550100")),
        disclosed_fields=DisclosedFieldsRequest(date_of_birth=False, address=False, selfie=False))
    raw = raw_json(sessions.create_session_without_preload_content(req))
    check("CreateSessionResponse", raw)
    session = raw["session"]
    assert session["state"] == "IdvCreated" and LAUNCH_RE.match(raw["launchUrl"])
    assert session["disclosedFields"]["dateOfBirth"] is False and session["disclosedFields"]["givenName"] is True
    sid = session["id"]

    # The web SDK's launchRedirect appends &redirectUrl=.
    page = browser.get(raw["launchUrl"] + "&redirectUrl=" + env["rp_origin"] + "/connect-done")
    assert page.status == 200 and "Enter your details" in page.body
    s = sessions.get_session(sid).session
    assert s.state == "IdvInProgress" and s.verification.provider == DB
    page = browser.submit(page, "submit", givenName="Philomena", familyName="Brackenridge", identityCode="123456")
    assert page.status == 303
    target, params = redirect_params(page.location)
    assert target == env["rp_origin"] + "/connect-done"
    assert params["sessionId"] == sid and params["success"] == "true"
    key = params["resultsAccessKey"]

    res, raw = results(sessions, sid, key)
    assert res.session.state == "IdvSuccess" and res.session.fail_code == "SessionFailNone"
    person = res.identity_data.person
    assert (person.given_name, person.family_name) == ("Philomena", "Brackenridge")
    # Not disclosed: date of birth, address, selfie.
    assert "dateOfBirth" not in raw["identityData"]["person"] and "address" not in raw["identityData"]["person"]
    keys = res.identity_data.attachment_access_keys
    assert keys.selfie is None and keys.document_front
    att = raw_json(AttachmentsApi(client).get_attachment_without_preload_content(
        GetAttachmentRequest(attachment_access_key=keys.document_front)))
    check("GetAttachmentResponse", att)
    assert base64.b64decode(att["content"]).startswith(b"\x89PNG")

    disk = database_bytes(env)
    for secret in (b"Philomena", b"Brackenridge", b"Hintina", key.encode()):
        assert secret not in disk
    blobs = sealed_blobs(env, sid)
    sessions.redact_session(sid)
    res, raw = results(sessions, sid, key)
    assert "identityData" not in raw and res.identity_data is None
    disk = database_bytes(env)
    for blob in blobs:
        assert blob[:48] not in disk


def test_widget_popup_post_message_and_sub_provider_choice(env, sessions, browser):
    created = sessions.create_session()
    page = browser.get(created.launch_url)
    page = browser.submit(page, "choose_provider", provider=SUB)
    # The user can go back to the provider list and choose again.
    page = browser.submit(page, "back")
    assert "Choose how to verify" in page.body
    page = browser.submit(page, "choose_provider", provider=SUB)
    page = browser.submit(page, "submit", choice="sub-provider-a")
    assert page.status == 200 and page.result is not None
    msg = page.result["message"]
    assert msg["success"] is True and msg["msg"] == "complete" and msg["sessionId"] == created.session.id
    assert page.result["origins"] == [env["rp_origin"]]
    res, _ = results(sessions, created.session.id, msg["resultsAccessKey"])
    assert res.identity_data.person.given_name == "Alex"


def test_failure_codes_cancel_and_user_cancel(env, sessions, browser):
    c = sessions.create_session(CreateSessionRequest(providers=[DB], launch_provider_directly=True))
    page = browser.get(c.launch_url + "&redirectUrl=" + env["rp_origin"] + "/x")
    page = browser.submit(page, "submit", givenName="A", familyName="B", identityCode="000000")
    assert redirect_params(page.location)[1] == {"sessionId": c.session.id, "success": "false"}
    s = sessions.get_session(c.session.id).session
    assert (s.state, s.fail_code, s.verification.fail_code) == (
        "IdvFailed", "SessionFailVerificationFailed", "VerificationFailInauthentic")

    c2 = sessions.create_session()
    raw = raw_json(sessions.cancel_session_without_preload_content(c2.session.id))
    check("CancelSessionResponse", raw)
    assert (raw["session"]["state"], raw["session"]["failCode"]) == ("IdvFailed", "SessionFailRpCanceled")
    with pytest.raises(BadRequestException):
        # A finished session cannot be cancelled again into another state.
        sessions.cancel_session(c.session.id)

    c3 = sessions.create_session()
    page = browser.get(c3.launch_url)
    page = browser.submit(page, "cancel")
    assert page.result["message"] == {"success": False, "msg": "user-closed", "sessionId": c3.session.id}
    assert sessions.get_session(c3.session.id).session.fail_code == "SessionFailUserCanceled"


def test_list_ordering_paging(env, sessions):
    ids = []
    for _ in range(3):
        ids.append(sessions.create_session().session.id)
        # Creation times are milliseconds: sessions created within one tie, and ties are broken
        # by id, which is random.
        time.sleep(0.003)
    raw = raw_json(sessions.list_sessions_without_preload_content(
        order_by=SessionOrdering.CREATED, order_direction=OrderDirection.DESCENDING, page_size=2, page=1))
    check("ListSessionsResponse", raw)
    assert [s["id"] for s in raw["sessions"]] == ids[::-1][:2] and raw["more"] is True
    nxt = sessions.list_sessions(order_by=SessionOrdering.CREATED, order_direction=OrderDirection.DESCENDING,
                                 page_size=2, page=2)
    assert nxt.sessions[0].id == ids[0]
    by_state = sessions.list_sessions(order_by=SessionOrdering.STATE, order_direction=OrderDirection.DESCENDING,
                                      page_size=50)
    order = ["IdvCreated", "IdvInitiated", "IdvAuthenticating", "IdvInProgress", "IdvSuccess", "IdvFailed"]
    ranks = [order.index(s.state) for s in by_state.sessions]
    assert ranks == sorted(ranks, reverse=True)
    # Parameter names bind in any letter case.
    import urllib.request
    req = urllib.request.Request(env["url"] + "/api/v1/sessions?orderby=created&ORDERDIRECTION=Ascending&pagesize=1",
                                 headers={"Authorization": "Bearer " + env["apps"]["connect"]["secret_key"]})
    body = json.loads(urllib.request.urlopen(req).read())
    check("ListSessionsResponse", body)
    assert len(body["sessions"]) == 1


def test_network_and_errors(env, client, sessions):
    net = NetworkApi(client)
    raw = raw_json(net.list_providers_without_preload_content())
    check("ListProvidersResponse", raw)
    rec = raw_json(net.recommend_providers_without_preload_content(
        RecommendRequest(phone_number="+15555550100", countries=["US"])))
    check("RecommendResponse", rec)
    assert len(rec["relevant"]) == 3

    with pytest.raises(BadRequestException) as e:
        sessions.create_session(CreateSessionRequest(providers=[DB, SUB], launch_provider_directly=True))
    errors = json.loads(e.value.body)
    assert isinstance(errors, list)
    for item in errors:
        check("ValidationResult", item)
    assert errors[0]["memberNames"] == ["providers"]
    with pytest.raises(BadRequestException):
        sessions.get_session_result(sessions.create_session().session.id,
                                    GetSessionResultRequest(results_access_key="rak_nope"))
    with pytest.raises(NotFoundException):
        sessions.get_session("00000000-0000-4000-8000-000000000000")
    bad = SessionsApi(ApiClient(Configuration(host=env["url"], access_token="sk_test_nope")))
    with pytest.raises(UnauthorizedException) as e:
        bad.list_sessions()
    check("FailureMessage", json.loads(e.value.body))


def test_older_connect_paths(env, sessions, browser):
    """Connect 0.2.3–0.3.0 (`/results/exchange`, `/attachments/exchange`) and the Dart-era
    `/exchange`, which no installable SDK reaches: raw HTTP, validated against Connect 0.2.3."""
    import urllib.request

    old = checker("connect-0.2.3")
    c = sessions.create_session(CreateSessionRequest(providers=[DB], launch_provider_directly=True))
    page = browser.get(c.launch_url + "&redirectUrl=" + env["rp_origin"] + "/old")
    page = browser.submit(page, "submit", givenName="Olde", familyName="Client", identityCode="123456")
    key = redirect_params(page.location)[1]["resultsAccessKey"]

    def post(path, body):
        req = urllib.request.Request(env["url"] + path, data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": "Bearer " + env["apps"]["connect"]["secret_key"], "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            assert r.headers["Content-Type"].startswith("application/json")
            return json.loads(r.read())

    exchanged = old("ExchangeResultsKeyResponse",
                    post(f"/api/v1/sessions/{c.session.id}/results/exchange", {"resultsAccessKey": key}))
    assert exchanged["identityData"]["person"]["givenName"] == "Olde"
    selfie = exchanged["identityData"]["attachments"]["selfie"]
    att = post("/api/v1/attachments/exchange", {"attachmentAccessKey": selfie})
    assert base64.b64decode(att["content"]).startswith(b"\x89PNG")
    token = post(f"/api/v1/sessions/{c.session.id}/exchange", {"identityToken": key})
    assert set(token) == {"identityData"} and token["identityData"]["person"]["familyName"] == "Client"
