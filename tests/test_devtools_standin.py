"""The stand-in itself: `python3 dev.py standin` accepts your own key, so a pipeline can be tried
against it (issue 14); and the rules of Apple's OpenAPI document it encodes for `asc-token api`,
checked here with plain HTTP requests and tokens signed by PyJWT, never with the product's code."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, cast
from urllib.parse import urljoin

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from requests import Response

from devtools.runnerfiles import parse_file_command
from devtools.standin import (
    DIAGNOSTIC_LOGS_TYPE,
    GZIP_TYPE,
    NEXT_LINK_FORMS,
    REPORT_REQUIRED_PARAMETERS,
    XCODE_METRICS_TYPE,
    AppStoreConnectStandIn,
    accepts,
)

from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial


def test_standin_serves_your_own_public_key(tmp_path: Path, key: KeyMaterial) -> None:
    public = tmp_path / "public.pem"
    public.write_bytes(
        key.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    output = tmp_path / "output"
    output.write_text("")
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "PYTHONPATH": str(ROOT)}
    args = ["--public-key", str(public), "--key-id", KEY_ID, "--issuer-id", ISSUER_ID, "--seconds", "20"]
    server = subprocess.Popen([sys.executable, "-m", "devtools.demo", "standin", *args], env=env, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 15
        while "url" not in parse_file_command(output.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        facts = parse_file_command(output.read_text())
        assert facts["key-id"] == KEY_ID and facts["issuer-id"] == ISSUER_ID and "key-file" not in facts
        assert facts["url"].startswith("http://127.0.0.1:")
        cli = Path(sys.executable).with_name("asc-token")
        run = subprocess.run(
            [str(cli), "--print", "--api-url", facts["url"]],
            env={
                "PATH": os.environ["PATH"],
                "ASC_PRIVATE_KEY": key.pem,
                "ASC_KEY_ID": KEY_ID,
                "ASC_ISSUER_ID": ISSUER_ID,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "checks passed: apps (3 apps visible" in run.stderr
        assert key.decode(run.stdout.strip())["iss"] == ISSUER_ID
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- Apple's rules the stand-in encodes for `asc-token api` ---------------------------------------

SALES_QUERY = "filter[frequency]=DAILY&filter[reportSubType]=SUMMARY&filter[reportType]=SALES&filter[vendorNumber]=8"
FINANCE_QUERY = "filter[regionCode]=US&filter[reportDate]=2026-01&filter[reportType]=FINANCIAL&filter[vendorNumber]=8"


def signed_token(key: KeyMaterial, lifetime: int = 600, scope: Optional[List[str]] = None) -> str:
    """A token as Apple's "Generating Tokens for API Requests" describes, signed here with PyJWT."""
    now = int(time.time())
    claims: Dict[str, Any] = {"iss": ISSUER_ID, "iat": now, "exp": now + lifetime, "aud": "appstoreconnect-v1"}
    if scope is not None:
        claims["scope"] = scope
    return jwt.encode(claims, key.key, algorithm="ES256", headers={"kid": KEY_ID, "typ": "JWT"})


def standin_get(
    api: AppStoreConnectStandIn, key: KeyMaterial, target: str, accept: Optional[str] = "*/*", token: str = ""
) -> Response:
    """GET ``target`` (a path or a full URL); ``accept`` None sends no Accept header at all."""
    headers = {"Authorization": f"Bearer {token or signed_token(key)}"}
    if accept is not None:
        headers["Accept"] = accept
    session = requests.Session()
    if accept is None:
        del session.headers["Accept"]  # requests would send */*
    with session:
        return session.get(target if target.startswith("http") else api.url + target, headers=headers, timeout=10)


def apple_error(response: Response, status: int, code: str) -> Dict[str, Any]:
    """The one error of Apple's ErrorResponse, with the members Apple requires."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["code"] == code and errors[0]["status"] == str(status)
    assert errors[0]["title"] and errors[0]["detail"]
    return cast(Dict[str, Any], errors[0])


def vendor_targets(api: AppStoreConnectStandIn, key: KeyMaterial) -> List[tuple[str, str]]:
    """Each vendor-type endpoint as (a request to it, its media type); the logs of a signature
    that a build's diagnosticSignatures list links to, as a client would find it."""
    build_id = api.add_build("1000000000", "7", processing_polls=0)
    signatures = standin_get(api, key, f"/v1/builds/{build_id}/diagnosticSignatures?filter[diagnosticType]=HANGS")
    assert signatures.status_code == 200 and signatures.headers["Content-Type"] == "application/json"
    (signature,) = signatures.json()["data"]
    assert signature["type"] == "diagnosticSignatures" and signature["attributes"]["diagnosticType"] == "HANGS"
    return [
        ("/v1/apps/1000000000/perfPowerMetrics", XCODE_METRICS_TYPE),
        (f"/v1/builds/{build_id}/perfPowerMetrics", XCODE_METRICS_TYPE),
        (signature["relationships"]["logs"]["links"]["related"], DIAGNOSTIC_LOGS_TYPE),
    ]


@pytest.mark.parametrize("accept", [None, "*/*", "application/*", "application/json, application/*;q=0.5", "exact"])
def test_vendor_endpoints_answer_their_media_type_without_data(
    key: KeyMaterial, api: AppStoreConnectStandIn, accept: Optional[str]
) -> None:
    """Apple's document: these 200s are xcodeMetrics and diagnosticLogs, not JSON:API documents."""
    for target, media_type in vendor_targets(api, key):
        response = standin_get(api, key, target, media_type if accept == "exact" else accept)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == media_type
        body = response.json()
        assert "data" not in body and "errors" not in body and body["version"]
        assert isinstance(body["productData"], list) and body["productData"]
        if media_type == XCODE_METRICS_TYPE:
            assert set(body["insights"]) == {"trendingUp", "regressions"}
            assert body["productData"][0]["platform"] == "IOS"
        else:
            assert body["productData"][0]["signatureId"] == target.split("/")[-2]
            assert body["productData"][0]["diagnosticLogs"][0]["callStackTree"]


@pytest.mark.parametrize(
    "accept", ["application/json", "text/html", "application/vnd.apple.other+json", "*/*;q=0", "application/*;q=0"]
)
def test_vendor_endpoints_answer_406_when_accept_does_not_allow_their_type(
    key: KeyMaterial, api: AppStoreConnectStandIn, accept: str
) -> None:
    for target, media_type in vendor_targets(api, key):
        error = apple_error(standin_get(api, key, target, accept), 406, "NOT_ACCEPTABLE")
        assert media_type in error["detail"]
    assert [outcome for _, outcome in api.requests][-3:] == ["406"] * 3


@pytest.mark.parametrize(
    ("accept", "allowed"),
    [
        (None, True),
        ("", True),
        ("*/*", True),
        ("application/*", True),
        ("APPLICATION/VND.APPLE.XCODE-METRICS+JSON", True),
        ("text/html, application/vnd.apple.xcode-metrics+json;q=0.2", True),
        ("application/json", False),
        ("application/vnd.apple.xcode-metrics+json;q=0, */*", False),  # the exact type's q=0 wins
        ("text/*", False),
        ("application/vnd.apple.xcode-metrics", False),
    ],
)
def test_accept_rules(accept: Optional[str], allowed: bool) -> None:
    """RFC 9110, section 12.5.1: the most specific matching range decides; q=0 means not acceptable."""
    assert accepts(accept, XCODE_METRICS_TYPE) is allowed


def test_vendor_endpoints_check_their_resource_and_filters(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    apple_error(standin_get(api, key, "/v1/apps/1000000099/perfPowerMetrics"), 404, "NOT_FOUND")
    apple_error(standin_get(api, key, "/v1/builds/no-such-build/perfPowerMetrics"), 404, "NOT_FOUND")
    apple_error(standin_get(api, key, "/v1/diagnosticSignatures/no-such/logs"), 404, "NOT_FOUND")
    bad = apple_error(standin_get(api, key, "/v1/apps/1000000000/perfPowerMetrics?filter[metricType]=SPEED"), 400,
                       "PARAMETER_ERROR.INVALID")  # fmt: skip
    assert bad["source"] == {"parameter": "filter[metricType]"}
    processing = api.add_build("1000000000", "8", processing_polls=1)
    assert standin_get(api, key, f"/v1/builds/{processing}/perfPowerMetrics").status_code == 200
    build = standin_get(api, key, f"/v1/builds/{processing}").json()["data"]
    assert build["attributes"]["processingState"] == "PROCESSING"  # metrics are not a look at the build
    narrowed = standin_get(api, key, "/v1/apps/1000000000/perfPowerMetrics?filter[metricType]=LAUNCH,HANG").json()
    categories = narrowed["productData"][0]["metricCategories"]
    assert [category["identifier"] for category in categories] == ["LAUNCH", "HANG"]


def test_vendor_endpoints_take_long_lived_scoped_tokens(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """Power and Performance Metrics and Logs are on Apple's list of resources for six-month tokens."""
    target = "/v1/apps/1000000000/perfPowerMetrics"
    long_lived = signed_token(key, lifetime=30 * 24 * 3600, scope=[f"GET {target}"])
    assert standin_get(api, key, target, token=long_lived).status_code == 200
    apple_error(standin_get(api, key, "/v1/apps", token=long_lived), 401, "NOT_AUTHORIZED")


@pytest.mark.parametrize(("path", "query"), [("/v1/salesReports", SALES_QUERY), ("/v1/financeReports", FINANCE_QUERY)])
def test_reports_answer_gzipped_tsv(key: KeyMaterial, api: AppStoreConnectStandIn, path: str, query: str) -> None:
    response = standin_get(api, key, f"{path}?{query}", accept=GZIP_TYPE)
    assert response.status_code == 200 and response.headers["Content-Type"] == GZIP_TYPE
    assert response.content[:2] == b"\x1f\x8b"  # gzip's magic: the body is the file, not a JSON document
    assert int(response.headers["Content-Length"]) == len(response.content)
    rows = [line.split("\t") for line in gzip.decompress(response.content).decode().splitlines()]
    assert len(rows) == 4 and len({len(row) for row in rows}) == 1  # a header and the three demo apps
    assert "Demo App" in rows[1]
    apple_error(standin_get(api, key, f"{path}?{query}", accept="application/json"), 406, "NOT_ACCEPTABLE")


@pytest.mark.parametrize(
    ("path", "missing"), [(path, name) for path, names in REPORT_REQUIRED_PARAMETERS.items() for name in names]
)
def test_reports_refuse_a_missing_required_filter(
    key: KeyMaterial, api: AppStoreConnectStandIn, path: str, missing: str
) -> None:
    query = SALES_QUERY if path == "/v1/salesReports" else FINANCE_QUERY
    kept = "&".join(part for part in query.split("&") if not part.startswith(missing + "="))
    error = apple_error(standin_get(api, key, f"{path}?{kept}"), 400, "PARAMETER_ERROR.REQUIRED")
    assert error["source"] == {"parameter": missing} and missing in error["detail"]


def test_reports_are_team_key_only(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """Apple: individual keys cannot "access Sales and Finance"."""
    api.register("INDIVIDUAL", key.key.public_key(), None)
    now = int(time.time())
    claims = {"sub": "user", "iat": now, "exp": now + 600, "aud": "appstoreconnect-v1"}
    token = jwt.encode(claims, key.key, algorithm="ES256", headers={"kid": "INDIVIDUAL", "typ": "JWT"})
    apple_error(standin_get(api, key, f"/v1/salesReports?{SALES_QUERY}", token=token), 403, "FORBIDDEN_ERROR")


def test_large_report(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.report_size_bytes = 3_000_000
    response = standin_get(api, key, f"/v1/financeReports?{FINANCE_QUERY}")
    assert response.status_code == 200 and len(response.content) >= 3_000_000
    lines = gzip.decompress(response.content).decode().splitlines()
    assert len(lines) > 10_000 and len(set(lines)) == len(lines)


@pytest.mark.parametrize("form", NEXT_LINK_FORMS)
def test_next_link_forms_resolve_against_the_page(key: KeyMaterial, api: AppStoreConnectStandIn, form: str) -> None:
    """links.next is a uri-reference: resolved against the page it came from (RFC 3986, section 5)."""
    api.app_count, api.next_link_form = 450, form
    url, ids, nexts = f"{api.url}/v1/apps?limit=200", [], []
    while url:
        page = standin_get(api, key, url).json()
        ids += [item["id"] for item in page["data"]]
        nexts.append(page["links"].get("next"))
        url = urljoin(url, page["links"]["next"]) if "next" in page["links"] else ""
    assert len(ids) == len(set(ids)) == 450
    first = nexts[0]
    written = {"absolute": api.url + "/v1/apps?", "absolute-path": "/v1/apps?", "path-relative": "apps?",
               "query-relative": "?"}  # fmt: skip
    assert first.startswith(written[form]) and "limit=200" in first and "cursor=" in first
    if form in ("path-relative", "query-relative"):  # joined to the API root instead, it misses
        assert standin_get(api, key, urljoin(api.url + "/", first.lstrip("?"))).status_code == 404


def test_paging_total_and_rate_limit_header_can_be_left_out(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """Apple's PagingInformation requires only limit; X-Rate-Limit is in Apple's prose, not a promise."""
    default = standin_get(api, key, "/v1/apps?limit=2")
    assert default.json()["meta"]["paging"] == {"total": 3, "limit": 2} and "X-Rate-Limit" in default.headers
    api.paging_total, api.rate_limit_header = False, False
    for target in ("/v1/apps?limit=2", "/v1/builds", "/v1/bundleIds", "/v1/ciProducts"):
        response = standin_get(api, key, target)
        assert response.status_code == 200 and "X-Rate-Limit" not in response.headers
        assert "total" not in response.json()["meta"]["paging"] and response.json()["meta"]["paging"]["limit"]


@pytest.mark.parametrize("size", [0, 1024])
def test_app_size(key: KeyMaterial, api: AppStoreConnectStandIn, size: int) -> None:
    api.app_count, api.app_size_bytes = 2000, size
    apps = standin_get(api, key, "/v1/apps?limit=200").json()["data"]
    assert len(apps) == 200 and standin_get(api, key, "/v1/apps?limit=1").json()["meta"]["paging"]["total"] == 2000
    for app in apps:
        length = len(json.dumps(app))
        assert (length < 300) if size == 0 else (size <= length < size + 250), length
        for name, links in app.get("relationships", {}).items():  # Apple's links, and they lead somewhere
            assert links["links"]["related"] == f"{api.url}/v1/apps/{app['id']}/{name}"
