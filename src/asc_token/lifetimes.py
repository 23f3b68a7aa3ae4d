"""Apple's token lifetime rule, in one place: config validation and mint's guard both ask it.

Apple, "Generating Tokens for API Requests", section "Determine the Appropriate Token Lifetime"
(https://developer.apple.com/documentation/appstoreconnectapi/generating-tokens-for-api-requests#Determine-the-Appropriate-Token-Lifetime):
"For most requests, App Store Connect rejects a token with a lifetime greater than 20 minutes.
However, it accepts long-lived tokens for some inherently safe requests if: The token defines a
scope. The scope only includes GET requests. The resources in the scope allow long-lived tokens.
If a token meets all the above criteria, App Store Connect accepts a token with a lifetime of up
to six months for the following resources:" Build Actions, Build Runs, Git References, Issues,
macOS Versions, Products, Providers, Power and Performance Metrics and Logs, Pull Requests,
Repositories, Test Results, Workflows, Xcode Versions. The Enterprise Program API's token page
has the 20-minute rule and no such list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from .apis import Api

SHORT_LIFETIME_SECONDS = 20 * 60
LONG_LIFETIME_SECONDS = 180 * 24 * 60 * 60  # "up to six months", read as 180 days (15,552,000 s)
# A runner clock this far from Apple's (its Date header) is named as a cause and shown in the summary.
SKEW_TOLERANCE_SECONDS = 60

# How a scope entry's path maps to a resource: Apple documents each resource as a collection in
# its reference, and every GET of that collection (the resource, its related resources and its
# relationships: /v1/ciProducts, /v1/ciProducts/{id}/workflows,
# /v1/ciProducts/{id}/relationships/workflows) starts with the collection's own path segment.
# So a path whose first segment after /v1/ is one of these belongs to that resource.
LONG_LIVED_COLLECTIONS: Dict[str, str] = {
    "ciBuildActions": "Build Actions",
    "ciBuildRuns": "Build Runs",
    "scmGitReferences": "Git References",
    "ciIssues": "Issues",
    "ciMacOsVersions": "macOS Versions",
    "ciProducts": "Products",
    "scmProviders": "Providers",
    "scmPullRequests": "Pull Requests",
    "scmRepositories": "Repositories",
    "ciTestResults": "Test Results",
    "ciWorkflows": "Workflows",
    "ciXcodeVersions": "Xcode Versions",
}
# GETs of those resources under another resource's path ({id}: one path segment). Power and
# Performance Metrics and Logs has no collection of its own: these are its endpoints
# (https://developer.apple.com/documentation/appstoreconnectapi/power-and-performance-metrics-and-logs).
# A relationship form (/relationships/x) answers the type and id of the same resources as its
# related form (/x): it reads the listed resource, as the collections' relationship paths do, so
# it is listed with it, where Apple's document has one (the metrics and logs have none).
LONG_LIVED_ENDPOINTS: Dict[str, str] = {
    "/v1/apps/{id}/ciProduct": "Products",
    "/v1/apps/{id}/relationships/ciProduct": "Products",
    "/v1/apps/{id}/perfPowerMetrics": "Power and Performance Metrics and Logs",
    "/v1/builds/{id}/perfPowerMetrics": "Power and Performance Metrics and Logs",
    "/v1/builds/{id}/diagnosticSignatures": "Power and Performance Metrics and Logs",
    "/v1/builds/{id}/relationships/diagnosticSignatures": "Power and Performance Metrics and Logs",
    "/v1/diagnosticSignatures/{id}/logs": "Power and Performance Metrics and Logs",
}


@dataclass(frozen=True)
class Refusal:
    """Which part of the rule a lifetime breaks, and the scope entry that breaks it."""

    rule: str  # "range", "api", "no-scope", "not-get" or "resource"
    entry: str = ""


def lifetime_refusal(lifetime: int, scope: Sequence[str], api: Api) -> Optional[Refusal]:
    """None when Apple accepts a token of ``lifetime`` seconds with ``scope`` on ``api``."""
    if 0 < lifetime <= SHORT_LIFETIME_SECONDS:
        return None
    if lifetime > SHORT_LIFETIME_SECONDS and not api.long_lived_tokens:
        return Refusal("api")
    if not 0 < lifetime <= LONG_LIFETIME_SECONDS:
        return Refusal("range")
    if not scope:
        return Refusal("no-scope")
    for entry in scope:
        method, _, target = entry.strip().partition(" ")
        if method != "GET":
            return Refusal("not-get", entry)
        if long_lived_resource(target.strip()) is None:
            return Refusal("resource", entry)
    return None


def long_lived_resource(target: str) -> Optional[str]:
    """Apple's name of the resource a ``/v1/...`` path (query allowed) reads, if it is a listed one."""
    segments = _segments(target)
    if len(segments) < 2 or segments[0] != "v1":
        return None
    for pattern, name in LONG_LIVED_ENDPOINTS.items():
        wanted = pattern.strip("/").split("/")
        if len(wanted) == len(segments) and all(w in ("{id}", s) for w, s in zip(wanted, segments)):
            return name
    return LONG_LIVED_COLLECTIONS.get(segments[1])


def resource_of(target: str) -> str:
    """The resource a path reads, for messages: ``/v1/apps/1/customerReviews`` reads customerReviews."""
    names = [s for s in _segments(target)[1:] if s != "relationships"][::2]
    return names[-1] if names else target


def long_lived_summary() -> str:
    """The resources that accept long-lived tokens and their paths, one resource per line."""
    paths: Dict[str, List[str]] = {}
    for collection, name in LONG_LIVED_COLLECTIONS.items():
        paths.setdefault(name, []).append(f"/v1/{collection}/...")
    for pattern, name in LONG_LIVED_ENDPOINTS.items():
        paths.setdefault(name, []).append(pattern)
    return "\n".join(f"{name}: {', '.join(listed)}" for name, listed in paths.items())


def long_lived_names() -> str:
    return ", ".join(dict.fromkeys([*LONG_LIVED_COLLECTIONS.values(), *LONG_LIVED_ENDPOINTS.values()]))


def describe_duration(seconds: float) -> str:
    """The one duration formatter: exact in the largest unit that divides it (``3600`` -> "1 h",
    ``15552000`` -> "180 days"), else rounded ("2 h 2 min"); a sign is dropped (clock skew)."""
    whole = round(abs(seconds))
    for unit, size in ((" days", 86400), (" h", 3600), (" min", 60)):
        if whole >= size and whole % size == 0:
            count = whole // size
            return f"{count}{' day' if count == 1 and size == 86400 else unit}"
    minutes = round(whole / 60)
    if whole < 120:
        return f"{whole} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes < 72 * 60 else f"{round(minutes / 1440)} days"


def _segments(target: str) -> List[str]:
    path = target.split("?", 1)[0]
    if not path.startswith("/"):
        return []
    segments = path[1:].split("/")
    # An empty, "." or ".." segment is not a path Apple documents: no resource at all.
    return [] if any(s in ("", ".", "..") for s in segments) else segments
