"""Generation B (Trinsic API) with the official SDK, trinsic-api==2.1.0, unchanged."""

import base64
import time

import pytest
import trinsic_api
from trinsic_api import ApiClient, AttachmentsApi, Configuration, NetworkApi, SessionsApi
from trinsic_api.exceptions import ApiException, BadRequestException, NotFoundException, UnauthorizedException
from trinsic_api.models import (
    CreateAdvancedProviderSessionRequest,
    CreateHostedProviderSessionRequest,
    CreateWidgetSessionRequest,
    GetAttachmentRequest,
    GetSessionResultRequest,
    IntegrationCapability as Cap,
    OrderDirection,
    ProviderInput,
    RecommendationInfo,
    RecommendRequest,
    RefreshStepContentRequest,
    SessionOrdering,
    TrinsicTestDatabaseLookupInput,
    TrinsicTestSubProvidersInput,
)

from conftest import LAUNCH_RE, checker, session_results, database_bytes, raw_json, redirect_params, sealed_blobs

DB = "trinsic-test-database-lookup"
SUB = "trinsic-test-sub-providers"
WALLET = "sessiond-test-wallet"
APP = "api"
check = checker("api-2.1.0")


def test_sdk_generation():
    assert trinsic_api.__version__ == "2.1.0"


def results(sessions, sid, key):
    return session_results(sessions, check, sid, key)


def test_widget_flow_redirect_results_attachment_and_redaction(env, sessions, client, browser):
    redirect = env["rp_origin"] + "/verified?step=1"
    raw = raw_json(sessions.create_widget_session_without_preload_content(
        CreateWidgetSessionRequest(redirect_url=redirect)))
    check("CreateWidgetSessionResponse", raw)
    sid, key, launch = raw["sessionId"], raw["resultsAccessKey"], raw["launchUrl"]
    assert LAUNCH_RE.match(launch)

    # While running: 200, done false, identityData null.
    res, _ = results(sessions, sid, key)
    assert (res.session.done, res.session.success, res.identity_data) == (False, False, None)

    # The user walks the hosted pages: pick the database-lookup provider, fill its form.
    page = browser.get(launch + "&launchMode=redirect")
    assert page.status == 200 and "Choose how to verify" in page.body
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    page = browser.submit(page, "choose_provider", provider=DB)
    assert page.status == 200 and "Enter your details" in page.body
    # A wrong-shaped code re-renders the form with the error, writing nothing.
    page = browser.submit(page, "submit", givenName="Zorblax", familyName="Quintavius", identityCode="12")
    assert page.status == 200 and 'aria-invalid="true"' in page.body
    page = browser.submit(page, "submit", givenName="Zorblax", familyName="Quintavius", identityCode="123456")
    assert page.status == 303
    target, params = redirect_params(page.location)
    assert target == env["rp_origin"] + "/verified"
    assert params == {"step": "1", "sessionId": sid, "resultsAccessKey": key, "success": "true"}

    res, raw = results(sessions, sid, key)
    assert res.session.done and res.session.success and res.session.error_code is None
    person = res.identity_data.person
    assert (person.given_name, person.family_name, person.full_name) == ("Zorblax", "Quintavius", "Zorblax Quintavius")
    assert str(person.date_of_birth) == "1990-01-01"
    assert res.identity_data.originating_provider_id == DB
    assert res.identity_data.document.number == "123456"
    keys = res.identity_data.attachment_access_keys
    assert raw["identityData"]["attachmentAccessKeys"]["provider"] == {}

    # Attachments by their own keys.
    attachments = AttachmentsApi(client)
    raw_att = raw_json(attachments.get_attachment_without_preload_content(
        GetAttachmentRequest(attachment_access_key=keys.selfie)))
    check("GetAttachmentResponse", raw_att)
    att = attachments.get_attachment(GetAttachmentRequest(attachment_access_key=keys.document_front))
    assert att.content_type == "image/png"
    assert base64.b64decode(raw_att["content"]).startswith(b"\x89PNG")

    # At rest: no identity data in clear, anywhere in the database files.
    disk = database_bytes(env)
    for secret in (b"Zorblax", b"Quintavius", key.encode()):
        assert secret not in disk
    blobs = sealed_blobs(env, sid)
    assert len(blobs) == 3  # results + selfie + document front

    # A reload of the launch link in the same browser shows the result again; another browser
    # cannot use the link.
    again = browser.get(launch)
    assert again.status == 303
    from conftest import Browser
    assert Browser(env["url"]).get(launch).status == 403

    # Redaction: results and attachments are gone, and so are their sealed bytes on disk.
    sessions.redact_session(sid)
    res, raw = results(sessions, sid, key)
    assert res.identity_data is None and raw["identityData"] is None
    assert res.session.done and res.session.success
    with pytest.raises(NotFoundException):
        attachments.get_attachment(GetAttachmentRequest(attachment_access_key=keys.selfie))
    disk = database_bytes(env)
    for blob in blobs:
        assert blob[:48] not in disk and blob[-48:] not in disk


def test_empty_widget_body_failure_and_get_session(env, sessions, browser):
    created = sessions.create_widget_session()
    page = browser.get(created.launch_url + "&launchMode=popup")
    page = browser.submit(page, "choose_provider", provider=DB)
    page = browser.submit(page, "submit", givenName="Ann", familyName="Other", identityCode="654321")
    # Popup mode: the page posts the result to the opener, only to the allowed origins.
    assert page.status == 200 and page.result is not None
    assert page.result["target"] == "opener"
    assert page.result["origins"] == [env["rp_origin"]]
    assert page.result["message"] == {"success": False, "msg": "failed", "sessionId": created.session_id}
    raw = raw_json(sessions.get_session_without_preload_content(created.session_id))
    check("GetSessionResponse", raw)
    s = sessions.get_session(created.session_id).session
    assert (s.done, s.success, s.error_code) == (True, False, "Other")
    res, _ = results(sessions, created.session_id, created.results_access_key)
    assert res.identity_data is None


def test_hosted_sub_provider_flow_user_picks(env, sessions, browser):
    raw = raw_json(sessions.create_hosted_provider_session_without_preload_content(
        CreateHostedProviderSessionRequest(provider=SUB, redirect_url=env["rp_origin"] + "/hosted")))
    check("CreateHostedProviderSessionResponse", raw)
    page = browser.get(raw["launchUrl"])
    assert "Choose your provider" in page.body
    page = browser.submit(page, "submit", choice="sub-provider-b")
    assert page.status == 303
    _, params = redirect_params(page.location)
    assert params["success"] == "true"
    res, _ = results(sessions, raw["sessionId"], params["resultsAccessKey"])
    assert res.identity_data.originating_sub_provider_id == "sub-provider-b"
    assert res.identity_data.originating_provider_id == SUB


def test_hosted_with_input_completes_on_arrival(env, sessions, browser):
    created = sessions.create_hosted_provider_session(CreateHostedProviderSessionRequest(
        provider=SUB, redirect_url=env["rp_origin"] + "/h",
        provider_input=ProviderInput(trinsic_test_sub_providers=TrinsicTestSubProvidersInput(
            sub_provider_id="sub-provider-a"))))
    page = browser.get(created.launch_url)
    assert page.status == 303
    assert redirect_params(page.location)[1]["resultsAccessKey"] == created.results_access_key


def test_advanced_capability_negotiation(env, sessions):
    full = ProviderInput(trinsic_test_database_lookup=TrinsicTestDatabaseLookupInput(
        given_name="Ada", family_name="Lovelace", identity_code="123456"))
    raw = raw_json(sessions.create_advanced_provider_session_without_preload_content(
        CreateAdvancedProviderSessionRequest(provider=DB, capabilities=[Cap.POLLRESULT], provider_input=full)))
    check("CreateAdvancedProviderSessionResponse", raw)
    assert raw["nextStep"] == {"method": "None", "content": "", "refresh": None}
    assert raw["resultCollection"]["method"] == "PollResult"
    res, _ = results(sessions, raw["sessionId"], raw["resultCollection"]["resultsAccessKey"])
    assert res.session.success and res.identity_data.person.given_name == "Ada"

    # Incomplete input and no fallback: refused at creation.
    partial = ProviderInput(trinsic_test_database_lookup=TrinsicTestDatabaseLookupInput(given_name="Ada"))
    with pytest.raises(BadRequestException) as e:
        sessions.create_advanced_provider_session(CreateAdvancedProviderSessionRequest(
            provider=DB, capabilities=[Cap.POLLRESULT], provider_input=partial))
    assert e.value.headers["Content-Type"].startswith("application/problem+json")
    import json
    problem = check("ProblemDetails", json.loads(e.value.body))
    assert problem["status"] == 400 and problem["traceId"].startswith("00-") and "errors" in problem

    # Fallback needs a redirect URL and the two browser capabilities.
    with pytest.raises(BadRequestException):
        sessions.create_advanced_provider_session(CreateAdvancedProviderSessionRequest(
            provider=DB, capabilities=[Cap.POLLRESULT], provider_input=partial, fallback_to_hosted_ui=True))
    fb = sessions.create_advanced_provider_session(CreateAdvancedProviderSessionRequest(
        provider=DB, capabilities=[Cap.LAUNCHBROWSER, Cap.CAPTUREREDIRECT], provider_input=partial,
        fallback_to_hosted_ui=True, redirect_url=env["rp_origin"] + "/fb"))
    assert fb.next_step.method == "LaunchBrowser" and LAUNCH_RE.match(fb.next_step.content)
    assert fb.result_collection.method == "CaptureRedirect"

    # Unknown provider; a redirect URL outside the allowed origins.
    with pytest.raises(BadRequestException):
        sessions.create_advanced_provider_session(CreateAdvancedProviderSessionRequest(
            provider="no-such-provider", capabilities=[Cap.POLLRESULT]))
    with pytest.raises(BadRequestException):
        sessions.create_widget_session(CreateWidgetSessionRequest(redirect_url="https://evil.example/x"))


def test_fallback_form_prefilled_from_input(env, sessions, browser):
    fb = sessions.create_advanced_provider_session(CreateAdvancedProviderSessionRequest(
        provider=DB, capabilities=[Cap.LAUNCHBROWSER, Cap.CAPTUREREDIRECT], fallback_to_hosted_ui=True,
        redirect_url=env["rp_origin"] + "/fb",
        provider_input=ProviderInput(trinsic_test_database_lookup=TrinsicTestDatabaseLookupInput(
            given_name="Prefilled", family_name="Person"))))
    page = browser.get(fb.next_step.content)
    assert 'value="Prefilled"' in page.body and 'value="Person"' in page.body
    page = browser.submit(page, "submit", givenName="Prefilled", familyName="Person", identityCode="123456")
    assert page.status == 303
    key = redirect_params(page.location)[1]["resultsAccessKey"]
    assert key == fb.result_collection.results_access_key


def test_wallet_deeplink_refresh_and_poll(env, sessions, browser):
    raw = raw_json(sessions.create_advanced_provider_session_without_preload_content(
        CreateAdvancedProviderSessionRequest(
            provider=WALLET, capabilities=[Cap.DEEPLINKTOMOBILE, Cap.POLLRESULT, Cap.REFRESHSTEPCONTENT])))
    check("CreateAdvancedProviderSessionResponse", raw)
    sid, key = raw["sessionId"], raw["resultCollection"]["resultsAccessKey"]
    step = raw["nextStep"]
    assert step["method"] == "DeeplinkToMobile" and step["refresh"]["timeToLiveSeconds"] == 30
    assert step["refresh"]["expiresAt"].endswith("Z")

    # Without RefreshStepContent the wallet cannot run and there is no fallback.
    with pytest.raises(BadRequestException):
        sessions.create_advanced_provider_session(CreateAdvancedProviderSessionRequest(
            provider=WALLET, capabilities=[Cap.DEEPLINKTOMOBILE, Cap.POLLRESULT]))

    raw_refresh = raw_json(sessions.refresh_step_content_without_preload_content(
        sid, RefreshStepContentRequest(results_access_key=key)))
    check("RefreshStepContentResponse", raw_refresh)
    fresh = raw_refresh["nextStep"]
    assert fresh["content"] != step["content"] and fresh["method"] == "DeeplinkToMobile"
    # The replaced link no longer works.
    assert browser.get(step["content"]).status == 403
    with pytest.raises(BadRequestException):
        sessions.refresh_step_content(sid, RefreshStepContentRequest(results_access_key="rak_wrong"))

    res, _ = results(sessions, sid, key)
    assert not res.session.done and res.identity_data is None

    # The test wallet opens the link and presents.
    page = browser.get(fresh["content"])
    assert page.status == 200 and "Share your credential" in page.body
    form = page.forms[0]
    done = browser.post(fresh["content"], {**form["hidden"], "decision": "present"})
    assert done.status == 200
    deadline = time.time() + 10
    while True:
        res, _ = results(sessions, sid, key)
        if res.session.done or time.time() > deadline:
            break
        time.sleep(0.2)
    assert res.session.success
    assert res.identity_data.document.type == "DriversLicense"
    assert res.identity_data.attachment_access_keys.document_portrait
    with pytest.raises(BadRequestException):
        sessions.refresh_step_content(sid, RefreshStepContentRequest(results_access_key=key))


def test_list_ordering_and_paging(env, sessions):
    ids = []
    for _ in range(3):
        ids.append(sessions.create_widget_session().session_id)
        # Creation times are milliseconds: sessions created within one tie, and ties are broken
        # by id, which is random.
        time.sleep(0.003)
    first = raw_json(sessions.list_sessions_without_preload_content(
        order_by=SessionOrdering.CREATED, order_direction=OrderDirection.DESCENDING, page_size=2, page=1))
    check("ListSessionsResponse", first)
    assert [s["id"] for s in first["sessions"]] == ids[::-1][:2]
    assert first["more"] is True and first["total"] >= 3
    second = sessions.list_sessions(order_by=SessionOrdering.CREATED, order_direction=OrderDirection.DESCENDING,
                                    page_size=2, page=2)
    assert second.sessions[0].id == ids[0]
    last_page = (first["total"] + 1) // 2
    assert sessions.list_sessions(page_size=2, page=last_page).more is False
    by_state = sessions.list_sessions(order_by=SessionOrdering.STATE, page_size=50)
    done = [s.done for s in by_state.sessions]
    assert done == sorted(done), "running sessions sort before finished ones"


def test_cancel_is_a_relying_party_cancellation(env, sessions, browser):
    c = sessions.create_widget_session(CreateWidgetSessionRequest(redirect_url=env["rp_origin"] + "/c"))
    raw = raw_json(sessions.cancel_session_without_preload_content(c.session_id))
    check("CancelSessionResponse", raw)
    assert raw["session"]["done"] and raw["session"]["errorCode"] == "Canceled"
    page = browser.get(c.launch_url)
    assert page.status == 303
    assert redirect_params(page.location)[1] == {"sessionId": c.session_id, "success": "false"}


def test_network_providers_contracts_recommend(env, client):
    net = NetworkApi(client)
    raw = raw_json(net.list_providers_without_preload_content())
    check("ListProvidersResponse", raw)
    assert {p["id"] for p in raw["providers"]} == {DB, SUB, WALLET}
    assert net.list_providers(health="offline").providers == []
    contracts = raw_json(net.list_provider_contracts_without_preload_content())
    check("ListProviderContractsResponse", contracts)
    wallet = next(c for c in contracts["providerContracts"] if c["id"] == WALLET)
    assert wallet["hasRefreshableContent"] and wallet["launchMethod"] == "DeeplinkToMobile"
    rec = raw_json(net.recommend_providers_without_preload_content(RecommendRequest(
        recommendation_info=RecommendationInfo(phone_number="+15555550100", countries=["US"]))))
    check("RecommendResponse", rec)
    assert rec["recognized"] == [] and len(rec["relevant"]) == 3


def test_errors_and_isolation(env, sessions):
    bad = ApiClient(Configuration(host=env["url"], access_token="sk_test_wrong"))
    with pytest.raises(UnauthorizedException):
        SessionsApi(bad).list_sessions()
    # A session of the other application (generation A) is not found from this one.
    import json
    import urllib.request

    req = urllib.request.Request(env["url"] + "/api/v1/sessions", data=b"", method="POST", headers={
        "Authorization": "Bearer " + env["apps"]["connect"]["secret_key"], "Content-Type": "application/json"})
    a_id = json.loads(urllib.request.urlopen(req).read())["session"]["id"]
    with pytest.raises(NotFoundException):
        sessions.get_session(a_id)
    with pytest.raises(ApiException) as e:
        sessions.get_session_result(sessions.create_widget_session().session_id,
                                    GetSessionResultRequest(results_access_key="rak_not_it"))
    assert e.value.status == 400
