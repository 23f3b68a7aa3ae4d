"""``uses: org/asc-token-action@v1``: inputs from the runner, outputs and summary back to it."""

from __future__ import annotations

import os
import time
from typing import Mapping, Optional

from .apis import APP_STORE_CONNECT
from .config import Naming, Settings, read_settings
from .errors import AscTokenError
from .flow import Collaborators, Outcome, run_flow
from .github import GitHubCommands, GitHubInputs
from .minting import Clock
from .report import summary_markdown
from .transport import RetryPolicy, Session, Transport


def run_action(
    env: Optional[Mapping[str, str]] = None,
    *,
    clock: Clock = time.time,
    session: Optional[Session] = None,
    policy: RetryPolicy = RetryPolicy(),
) -> int:
    environ: Mapping[str, str] = os.environ if env is None else env
    gh = GitHubCommands(environ)
    inputs = GitHubInputs(environ)
    settings: Optional[Settings] = None
    outcome: Optional[Outcome] = None
    try:
        settings = read_settings(inputs)
        transport = Transport(session=session, policy=policy, log=gh.info)
        edge = Collaborators(clock=clock, mask=gh.mask, log=gh.info, transport=transport)
        outcome = run_flow(
            settings,
            inputs,
            edge,
            workspace=environ.get("GITHUB_WORKSPACE"),
            temp_dir=environ.get("RUNNER_TEMP"),
        )
    except AscTokenError as error:
        gh.error(error.message, title=error.title)
        if error.details:
            gh.info(error.details)
        gh.append_summary(summary_markdown(settings, outcome, error, inputs))
        return 1
    if not publish(gh, settings, outcome, inputs):
        gh.warning(
            "GITHUB_OUTPUT is not set, so the token output cannot be passed on; is this running outside GitHub Actions?"
        )
    return 0


def publish(gh: GitHubCommands, settings: Settings, outcome: Outcome, naming: Naming, *, report: bool = True) -> bool:
    """Outputs, exported variables, the log line and the summary; False when there is no GITHUB_OUTPUT.

    ``report=False`` (the CLI in a later step, perhaps once a minute in a polling loop): outputs
    only, no log line and no job summary section per call.
    """
    minted = outcome.minted
    if not gh.set_output("token", minted.token):
        gh.append_summary(summary_markdown(settings, outcome, None, naming))
        return False
    gh.set_output("expires-at", minted.expires_at_iso)
    if outcome.verification is not None:
        result = outcome.verification
        if result.app_count is not None:
            gh.set_output("app-count", str(result.app_count))
        if result.rate_limit_remaining is not None:
            gh.set_output("rate-limit-remaining", str(result.rate_limit_remaining))
    for check in outcome.checks:
        if check.app_id:  # only an `app:<bundle-id>` check that found exactly one app
            gh.set_output("app-id", check.app_id)
            gh.set_output("app-name", check.app_name)
    files = outcome.key_files
    if files is not None:
        gh.set_output("key-path", files.key_path)
        gh.set_output("api-key-json-path", files.api_key_json_path)
        if settings.export_env:
            exported = {
                "API_PRIVATE_KEYS_DIR": files.directory,
                "APP_STORE_CONNECT_API_KEY_PATH": files.api_key_json_path,
                "ASC_KEY_ID": settings.key_id,
                "ASC_PRIVATE_KEY_PATH": files.key_path,
                # With these, `asc-token --print` and `asc-token api` in later steps need no setup.
                "ASC_KEY_TYPE": settings.key_type,
                "ASC_API_URL": settings.api_url,
                "ASC_API": settings.api.name,
            }
            if settings.issuer_id is not None:
                exported["ASC_ISSUER_ID"] = settings.issuer_id
            for name, value in exported.items():
                gh.export_variable(name, value)
        if settings.key_type == "individual":
            gh.notice(
                "Individual key: altool takes it with --api-key-subject user and no issuer; Apple "
                "does not let individual keys use notarytool or the provisioning endpoints that "
                "xcodebuild -allowProvisioningUpdates needs (use a team key there); the fastlane "
                "JSON has no issuer_id, which fastlane reads as an individual key.",
                title="Individual key files",
            )
    if settings.export_token:
        gh.export_variable("ASC_TOKEN", minted.token)
    if not report:
        return True
    if outcome.checks:
        status = "checks passed: " + ", ".join(check.check.entry for check in outcome.checks)
    else:
        status = f"not verified ({naming.assignment('verify', 'false')})"
    gh.info(
        f"Minted {'an App Store Connect token' if settings.api is APP_STORE_CONNECT else 'a token for the ' + settings.api.title} for key {settings.key_id} ({settings.key_type}), expires {minted.expires_at_iso}; {status}."
    )
    gh.append_summary(summary_markdown(settings, outcome, None, naming))
    return True
