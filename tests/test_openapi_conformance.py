"""Requests and the stand-in against Apple's own OpenAPI documents.

The product's preflight requests (checks.CHECKS, apis' verify paths) must be GETs that Apple's
document lists, with query parameters it allows; the stand-in's non-JSON answers and required
report filters must be the document's, so that its encoding is proven against Apple's, not
against the product. The documents are Apple's and never committed: this module skips when
``../shared/reference/apple-openapi`` (or ``$ASC_OPENAPI_DIR``) is absent. ``pytest -s`` (or
``python -m tests.test_openapi_conformance``) prints the facts the issue asks about.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import pytest

from .runner import OPENAPI_DIR, OPENAPI_MISSING, KeyMaterial, openapi_document

if not (OPENAPI_DIR / "spec.json").is_file():  # the rest of the module, imports included, needs them
    pytest.skip(OPENAPI_MISSING, allow_module_level=True)

from asc_token.apis import APP_STORE_CONNECT, ENTERPRISE
from asc_token.checks import CHECKS
from asc_token.lifetimes import LONG_LIVED_COLLECTIONS, LONG_LIVED_ENDPOINTS, long_lived_resource
from asc_token.redact import may_be_secret_path
from devtools.standin import (
    APPLE_MAX_PAGE_SIZE,
    DIAGNOSTIC_TYPES,
    MEDIA_TYPES,
    PERF_METRIC_TYPES,
    PERF_PLATFORMS,
    REPORT_REQUIRED_PARAMETERS,
    AppStoreConnectStandIn,
)

from .test_devtools_standin import apple_error, standin_get, vendor_targets

CURRENT = "spec.json"  # App Store Connect API 4.4.1
OLDER = "spec-3.7.0.json"  # Apple's content unpatched (see the folder's README)
ENTERPRISE_SPEC = "enterprise-spec.json"
Operation = Dict[str, Any]


def operation(name: str, template: str, method: str = "get") -> Optional[Operation]:
    found: Optional[Operation] = openapi_document(name)["paths"].get(template, {}).get(method)
    return found


def find_template(name: str, path: str) -> Optional[str]:
    """The document's path template that a concrete path matches ({x}: one segment)."""
    for template in openapi_document(name)["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return str(template)
    return None


def query_parameters(name: str, template: str, method: str = "get") -> Dict[str, Dict[str, Any]]:
    """Query parameters of an operation, its path's own included: name -> parameter object."""
    item = openapi_document(name)["paths"][template]
    listed = [*item.get("parameters", []), *item[method].get("parameters", [])]
    return {param["name"]: param for param in listed if param.get("in") == "query"}


def ok_media_types(name: str, template: str) -> List[str]:
    return list(operation(name, template)["responses"]["200"].get("content", {}))  # type: ignore[index]


def non_json_200s(name: str) -> Dict[str, List[str]]:
    """GET paths whose 200 offers something other than exactly application/json."""
    found = {}
    for template, item in openapi_document(name)["paths"].items():
        if "get" in item and "200" in item["get"]["responses"]:
            types = ok_media_types(name, template)
            if types != ["application/json"]:
                found[template] = types
    return dict(sorted(found.items()))


def limit_maxima(name: str) -> Dict[int, List[str]]:
    """The `limit` parameter's maximum -> the GET paths that allow it."""
    maxima: Dict[int, List[str]] = {}
    for template, item in openapi_document(name)["paths"].items():
        if "get" in item:
            limit = query_parameters(name, template).get("limit")
            if limit is not None and "maximum" in limit.get("schema", {}):
                maxima.setdefault(limit["schema"]["maximum"], []).append(template)
    return dict(sorted(maxima.items()))


def preflight_requests() -> List[Tuple[str, str, str]]:
    """(what sends it, document, path?query) for every request the preflight checks make."""
    made = [(f"verify ({api.name})", ENTERPRISE_SPEC if api is ENTERPRISE else CURRENT, api.verify_path)
            for api in (APP_STORE_CONNECT, ENTERPRISE)]  # fmt: skip
    made += [
        (f"check {name}", CURRENT, check.path.format(bundle_id="com.example.demo"))
        for name, check in CHECKS.items()
        if not check.on_notary  # the notary service has its own API, in none of these documents
    ]
    return made


@pytest.mark.parametrize(("sender", "document", "request_target"), preflight_requests())
@pytest.mark.parametrize("version", ["current", "older"])
def test_preflight_requests_are_documented_gets(sender: str, document: str, request_target: str, version: str) -> None:
    if version == "older":
        if document != CURRENT:
            pytest.skip("the Enterprise Program API has one document")
        document = OLDER
    path, query = urlsplit(request_target).path, urlsplit(request_target).query
    template = find_template(document, path)
    assert template is not None and operation(document, template) is not None, f"{sender}: GET {path} not in {document}"
    allowed = query_parameters(document, template)
    for name, value in parse_qsl(query, keep_blank_values=True):
        assert name in allowed, f"{sender}: {name} is not a query parameter of GET {template} in {document}"
        schema = allowed[name].get("schema", {})
        if schema.get("type") == "integer":
            assert value.isdigit() and int(value) <= schema.get("maximum", int(value)), (sender, name, value)


@pytest.mark.parametrize("document", [CURRENT, OLDER])
def test_standin_media_types_are_the_documents(document: str) -> None:
    """Every non-JSON 200 the stand-in serves is the document's only media type for that path."""
    for template, media_type in MEDIA_TYPES.items():
        assert ok_media_types(document, template) == [media_type], template
        assert template in non_json_200s(document)


def test_standin_serves_the_documents_media_types(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """Live: each answer's Content-Type is what the document gives for its path."""
    for target, _ in vendor_targets(api, key):
        path = urlsplit(target).path
        template = find_template(CURRENT, path)
        assert template is not None
        response = standin_get(api, key, target)
        assert response.status_code == 200 and [response.headers["Content-Type"]] == ok_media_types(CURRENT, template)


@pytest.mark.parametrize("template", sorted(REPORT_REQUIRED_PARAMETERS))
def test_report_filters_are_the_documents(key: KeyMaterial, api: AppStoreConnectStandIn, template: str) -> None:
    """The stand-in requires exactly the filters the document marks required, and a request that
    the document would call complete (each required filter with its first allowed value) succeeds."""
    parameters = query_parameters(CURRENT, template)
    required = sorted(name for name, param in parameters.items() if param.get("required"))
    assert required == sorted(REPORT_REQUIRED_PARAMETERS[template])
    assert sorted(name for name, p in query_parameters(OLDER, template).items() if p.get("required")) == required

    def sample(name: str) -> str:
        schema = parameters[name]["schema"]
        return str(schema.get("items", schema).get("enum", ["2026-01"])[0])

    complete = {name: sample(name) for name in required}
    response = standin_get(api, key, f"{template}?" + "&".join(f"{k}={v}" for k, v in complete.items()))
    assert response.status_code == 200 and [response.headers["Content-Type"]] == ok_media_types(CURRENT, template)
    for missing in required:
        partial = "&".join(f"{k}={v}" for k, v in complete.items() if k != missing)
        error = apple_error(standin_get(api, key, f"{template}?{partial}"), 400, "PARAMETER_ERROR.REQUIRED")
        assert error["source"] == {"parameter": missing}


def _enum(template: str, parameter: str) -> List[str]:
    enum: List[str] = query_parameters(CURRENT, template)[parameter]["schema"]["items"]["enum"]
    return enum


def test_standin_filters_and_limits_are_the_documents() -> None:
    for template in ("/v1/apps/{id}/perfPowerMetrics", "/v1/builds/{id}/perfPowerMetrics"):
        assert sorted(_enum(template, "filter[platform]")) == sorted(PERF_PLATFORMS)
        assert sorted(_enum(template, "filter[metricType]")) == sorted(PERF_METRIC_TYPES)
    assert sorted(_enum("/v1/builds/{id}/diagnosticSignatures", "filter[diagnosticType]")) == sorted(DIAGNOSTIC_TYPES)
    for template in ("/v1/apps", "/v1/diagnosticSignatures/{id}/logs", "/v1/builds/{id}/diagnosticSignatures"):
        assert query_parameters(CURRENT, template)["limit"]["schema"]["maximum"] == APPLE_MAX_PAGE_SIZE


def test_paging_links_and_total_are_what_the_document_promises() -> None:
    """links.next is an optional uri-reference; meta.paging requires only limit (total is optional)."""
    for document in (CURRENT, OLDER, ENTERPRISE_SPEC):
        schemas = openapi_document(document)["components"]["schemas"]
        links = schemas["PagedDocumentLinks"]
        assert links["properties"]["next"]["format"] == "uri-reference" and "next" not in links.get("required", [])
        assert schemas["PagingInformation"]["properties"]["paging"]["required"] == ["limit"]


def test_largest_limit() -> None:
    """The issue: 200 is not Apple's largest page; some price point lists allow 8000."""
    maxima = limit_maxima(CURRENT)
    largest = max(maxima)
    assert largest == 8000
    assert "/v2/inAppPurchases/{id}/pricePoints" in maxima[largest]


def long_lived_report() -> Dict[str, Any]:
    """The long-lived list (lifetimes.py) against the document's paths, for the report."""
    paths = openapi_document(CURRENT)["paths"]
    endpoints = {}
    for pattern in (p for p in LONG_LIVED_ENDPOINTS if "/relationships/" not in p):
        relationship = re.sub(r"/\{id\}/", "/{id}/relationships/", pattern)
        endpoints[pattern] = {
            "in document": "get" in paths.get(pattern, {}),
            "relationships form": relationship if relationship in paths else None,
            "relationships form accepted by lifetimes": (
                long_lived_resource(relationship.replace("{id}", "1")) is not None if relationship in paths else None
            ),
        }
    collections = {c: sorted(p for p in paths if p.split("/")[2] == c) for c in LONG_LIVED_COLLECTIONS}
    return {"endpoints": endpoints, "collections": {c: len(found) for c, found in collections.items()}}


def test_long_lived_endpoints_exist_in_the_document() -> None:
    report = long_lived_report()
    assert all(facts["in document"] for facts in report["endpoints"].values()), report["endpoints"]
    # Each relationship form the document has is decided like its related form: accepted (lifetimes.py).
    forms = {pattern: facts["relationships form"] for pattern, facts in report["endpoints"].items()}
    assert {pattern for pattern, form in forms.items() if form} == {
        "/v1/apps/{id}/ciProduct", "/v1/builds/{id}/diagnosticSignatures"
    }  # fmt: skip
    assert all(
        facts["relationships form accepted by lifetimes"] in (True, None) for facts in report["endpoints"].values()
    )
    assert all(form in LONG_LIVED_ENDPOINTS for form in forms.values() if form)
    assert all(count > 0 for count in report["collections"].values()), report["collections"]


def facts() -> Dict[str, Any]:
    maxima = limit_maxima(CURRENT)
    return {
        "200s without application/json (4.4.1)": {
            t: types for t, types in non_json_200s(CURRENT).items() if "application/json" not in types
        },
        "200s also offering another type (4.4.1)": {
            t: types for t, types in non_json_200s(CURRENT).items() if "application/json" in types
        },
        "report required filters": {t: sorted(REPORT_REQUIRED_PARAMETERS[t]) for t in REPORT_REQUIRED_PARAMETERS},
        "limit maxima": {str(k): len(v) for k, v in maxima.items()},
        "largest limit": {str(max(maxima)): maxima[max(maxima)]},
        "long-lived list vs document": long_lived_report(),
    }


def test_print_facts() -> None:
    print(json.dumps(facts(), indent=2))  # shown with pytest -s: the figures the issue asks for


if __name__ == "__main__":
    print(json.dumps(facts(), indent=2))


@pytest.mark.parametrize("document", [CURRENT, OLDER, ENTERPRISE_SPEC])
def test_every_documented_path_is_a_path_asc_token_api_sends(document: str) -> None:
    """No path of Apple's documents reads as key material (long resource names such as
    subscriptionOfferCodeOneTimeUseCodes are letters only), with a numeric and a UUID ID."""
    for template in openapi_document(document)["paths"]:
        for resource_id in ("1234567890", "1a2b3c4d-0000-4000-8000-000000000001"):
            path = re.sub(r"\{[^}]+\}", resource_id, template)
            assert not may_be_secret_path(path), path
