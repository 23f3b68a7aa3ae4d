"""The two APIs an Apple team key can sign for: the only place where they differ.

Same signing (ES256, ``kid``, ``iss``/``sub``, ``exp - iat``), different audience and host:
Apple, "Generating Tokens for API Requests", for the App Store Connect API
(https://developer.apple.com/documentation/appstoreconnectapi/generating-tokens-for-api-requests)
and for the Enterprise Program API
(https://developer.apple.com/documentation/enterpriseprogramapi/generating-tokens-for-api-requests).
A third API is one more record here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Api:
    name: str  # as the user writes it in `api`
    service: str  # who answers, in every message, log line and summary title
    audience: str  # the token's `aud`
    url: str  # the default base URL
    verify_path: str  # one cheap GET that any role of the key may make (the `apps` check)
    verify_purpose: str  # what a 403 on it says the role may not do
    verify_grant: str  # "give key X <grant>" in a 403 on it
    counts_apps: bool  # whether verify_path's paging total is the number of apps the key sees
    checks: Tuple[str, ...]  # the preflight checks that read its resources; () for all
    long_lived_tokens: bool  # whether Apple lists resources that accept tokens beyond 20 minutes
    fastlane_in_house: bool  # fastlane's `in_house` in its API key JSON
    build_uploads: bool  # whether it has the Build Uploads API (asc-token upload)


APP_STORE_CONNECT = Api(
    name="app-store-connect",
    service="App Store Connect",
    audience="appstoreconnect-v1",
    url="https://api.appstoreconnect.apple.com",
    verify_path="/v1/apps?limit=1",
    verify_purpose="list apps",
    verify_grant="an App Manager, Developer or Admin role",
    counts_apps=True,
    checks=(),  # all of them
    long_lived_tokens=True,
    fastlane_in_house=False,
    build_uploads=True,
)
# Its reference (https://developer.apple.com/documentation/enterpriseprogramapi) serves bundle
# IDs, capabilities, certificates, devices, profiles and users, but no /v1/apps: "List Bundle
# Ids" is the cheap read there. Its token page has the 20-minute rule and no long-lived list.
ENTERPRISE = Api(
    name="enterprise",
    service="Enterprise Program API",
    audience="apple-developer-enterprise-v1",
    url="https://api.enterprise.developer.apple.com",
    verify_path="/v1/bundleIds?limit=1",
    verify_purpose="list bundle IDs",
    verify_grant="a role in the Enterprise Program API account that may list bundle IDs",
    counts_apps=False,
    checks=("apps",),
    long_lived_tokens=False,
    fastlane_in_house=True,
    build_uploads=False,
)
APIS: Dict[str, Api] = {api.name: api for api in (APP_STORE_CONNECT, ENTERPRISE)}
