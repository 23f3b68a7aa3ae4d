"""The preflight checks' catalogue: one request each, proving the key can do what this job will do.

:data:`CHECKS` is the one place that says, per check, which request it makes, what a pass proves,
what the job needs it for and which role grants it. preflight.py runs them.

The roles are Apple's, from (read 2026):
- Creating API Keys for App Store Connect API: team keys see all apps of the team; individual keys
  "aren't able to use Provisioning endpoints, access Sales and Finance, or notaryTool".
  https://developer.apple.com/documentation/appstoreconnectapi/creating-api-keys-for-app-store-connect-api
- Role permissions: Admins "have access to all apps" and, on an organization team, Certificates,
  Identifiers & Profiles by default; App Manager "manages all aspects of an app, such as pricing,
  App Store information, and app development and delivery"; Developer "manages development and
  delivery of an app". https://developer.apple.com/help/app-store-connect/reference/role-permissions
- Program Roles: for other roles, Certificates, Identifiers & Profiles is a separate permission
  granted in Users and Access; "Notarize software" is a row of its own.
  https://developer.apple.com/support/roles/
- UserRole, CLOUD_MANAGED_APP_DISTRIBUTION: granted by default to Account Holder and Admin (what
  xcodebuild's cloud signing needs). https://developer.apple.com/documentation/appstoreconnectapi/userrole
- Notary: a team key with the Developer role works and the notary service answers an unaccepted
  key in plain text, not JSON (Apple Developer Forums, thread 749215; not in Apple's reference).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Tuple

from .apis import APP_STORE_CONNECT, Api

DEFAULT_NOTARY_URL = "https://appstoreconnect.apple.com/notary/v2"
DEFAULT_CHECKS = "apps"
SEPARATE_TOKEN_LIFETIME = 120  # seconds: a check's own unscoped token, when `scope` does not cover it
# Apple: a bundle ID holds only A-Z, a-z, 0-9, hyphens and periods, in reverse-DNS style. A
# wildcard (com.example.*) exists only when registering an App ID; an app record always has an
# explicit bundle ID, so `app:` refuses one.
BUNDLE_ID = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
BUNDLE_ID_MAX = 255


@dataclass(frozen=True)
class Check:
    """One `checks` entry: a name from :data:`CHECKS`, and the bundle ID for ``app:``."""

    name: str
    bundle_id: str = ""

    @property
    def entry(self) -> str:
        """As the user writes it in `checks`."""
        return f"app:{self.bundle_id}" if self.name == "app" else self.name


@dataclass(frozen=True)
class Preflight:
    """What the token command proves before the build: nothing when ``verify`` is false."""

    verify: bool = True
    checks: Tuple[Check, ...] = (Check("apps"),)
    notary_url: str = DEFAULT_NOTARY_URL


@dataclass(frozen=True)
class CheckSpec:
    name: str
    path: str  # appended to `api-url`, or to `notary-url` when on_notary; {bundle_id} for app:
    purpose: str  # "its role may not <purpose>" in a 403
    proves: str  # what a pass means for the job
    if_missing: str  # what a failure means for the job
    needed_for: str  # "..., which <needed_for>" in a 403
    grant: str  # "give key X <grant>" in a 403: only what Apple says grants it
    individual_keys_cannot_use: str = ""  # Apple refuses individual keys here
    on_notary: bool = False


_DELIVERY_ROLE = "the Developer, App Manager or Admin role (Apple: they manage an app's development and delivery)"


def spec_for(name: str, api: Api) -> CheckSpec:
    """A check on ``api``: `apps` proves the credentials with that API's own cheap read (apis.py)."""
    if name != "apps":
        return CHECKS[name]
    return CheckSpec(
        "apps",
        api.verify_path,
        purpose=api.verify_purpose,
        proves=f"the credentials work and the key can {api.verify_purpose} ({api.service})",
        if_missing="steps that list or look up apps will fail",
        needed_for="",
        grant=api.verify_grant,
    )


CHECKS: Dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        spec_for("apps", APP_STORE_CONNECT),  # on another API, that API's own
        CheckSpec(
            "app",
            "/v1/apps?filter[bundleId]={bundle_id}&limit=1",
            purpose="read apps",
            proves="the key sees this app: outputs app-id (for altool --apple-id) and app-name",
            if_missing="uploads and API calls for this app will fail",
            needed_for="every upload and API call for this app needs",
            grant="an App Manager, Developer or Admin role",
        ),
        CheckSpec(
            "testflight",
            "/v1/builds?limit=1",
            purpose="read builds",
            proves="the key can read builds: uploads and TestFlight steps can see them",
            if_missing="TestFlight steps (pilot, build lookups after an altool upload) will fail",
            needed_for="uploads and TestFlight steps need",
            grant=_DELIVERY_ROLE,
        ),
        CheckSpec(
            "provisioning",
            "/v1/bundleIds?limit=1",
            purpose="read signing assets (bundle IDs)",
            proves="the key can reach signing assets, as xcodebuild -allowProvisioningUpdates and match need "
            "(cloud signing for distribution also needs Admin)",
            if_missing="xcodebuild -allowProvisioningUpdates and fastlane match will fail",
            needed_for="xcodebuild -allowProvisioningUpdates and fastlane match need",
            grant="the Admin role (Apple gives Admins Certificates, Identifiers & Profiles and "
            "cloud-managed distribution certificates by default; other roles only as separate permissions)",
            individual_keys_cannot_use="the provisioning endpoints that xcodebuild -allowProvisioningUpdates and match call",
        ),
        CheckSpec(
            "xcode-cloud",
            "/v1/ciProducts?limit=1",
            purpose="read Xcode Cloud products",
            proves="the key can read Xcode Cloud products, workflows and builds",
            if_missing="Xcode Cloud steps through the API will fail",
            needed_for="Xcode Cloud steps through the API need",
            grant=_DELIVERY_ROLE,
        ),
        CheckSpec(
            "notary",
            "/submissions?limit=1",
            purpose="use the notary service",
            proves="notarytool will accept the key",
            if_missing="notarytool submit will fail",
            needed_for="notarytool needs",
            grant="a role that may notarize software in Apple's Program Roles (a team key with the Developer "
            "role is reported to be enough)",
            individual_keys_cannot_use="notarytool",
            on_notary=True,
        ),
    )
}
