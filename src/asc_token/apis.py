"""The two APIs an Apple team key can sign for, and everything that differs between them.

Same signing (ES256, ``kid``, ``iss``/``sub``, ``exp - iat``), different audience and host:
Apple, "Generating Tokens for API Requests", for the App Store Connect API
(https://developer.apple.com/documentation/appstoreconnectapi/generating-tokens-for-api-requests)
and for the Enterprise Program API
(https://developer.apple.com/documentation/enterpriseprogramapi/generating-tokens-for-api-requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class Api:
    name: str  # as the user writes it in `api`
    title: str  # for messages
    audience: str  # the token's `aud`
    url: str  # the default base URL
    verify_path: str  # one cheap GET that any role of the key may make
    verify_purpose: str  # what a 403 on it says the role may not do
    long_lived_tokens: bool  # whether Apple lists resources that accept tokens beyond 20 minutes
    fastlane_in_house: bool  # fastlane's `in_house` in its API key JSON


APP_STORE_CONNECT = Api(
    name="app-store-connect",
    title="App Store Connect API",
    audience="appstoreconnect-v1",
    url="https://api.appstoreconnect.apple.com",
    verify_path="/v1/apps?limit=1",
    verify_purpose="list apps",
    long_lived_tokens=True,
    fastlane_in_house=False,
)
# Its reference (https://developer.apple.com/documentation/enterpriseprogramapi) serves bundle
# IDs, capabilities, certificates, devices, profiles and users, but no /v1/apps: "List Bundle
# Ids" is the cheap read there. Its token page has the 20-minute rule and no long-lived list.
ENTERPRISE = Api(
    name="enterprise",
    title="Enterprise Program API",
    audience="apple-developer-enterprise-v1",
    url="https://api.enterprise.developer.apple.com",
    verify_path="/v1/bundleIds?limit=1",
    verify_purpose="list bundle IDs",
    long_lived_tokens=False,
    fastlane_in_house=True,
)
APIS: Dict[str, Api] = {api.name: api for api in (APP_STORE_CONNECT, ENTERPRISE)}
