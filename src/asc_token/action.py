"""``uses: org/asc-token-action@v1``: inputs from the runner, outputs and summary back to it."""

from __future__ import annotations

import contextlib
from typing import Optional

from .checks import Preflight, read_preflight
from .config import Credentials, read_credentials
from .errors import EXIT_OK, AscTokenError
from .flow import Outcome, run_flow
from .github import GitHubCommands, GitHubInputs, check_runner_file, publish, read_delivery
from .report import summary_markdown
from .transport import Io

INDIVIDUAL_KEY_FILES = (
    "Individual key: altool takes it with --api-key-subject user and no issuer; Apple does not let "
    "individual keys use notarytool or the provisioning endpoints that xcodebuild "
    "-allowProvisioningUpdates needs (use a team key there); the fastlane JSON has no issuer_id, which "
    "fastlane reads as an individual key."
)


def run_action(io: Io) -> int:
    environ = io.env
    gh = GitHubCommands(environ, stream=io.out())
    inputs = GitHubInputs(environ, log=gh.info)
    credentials: Optional[Credentials] = None
    preflight: Optional[Preflight] = None
    outcome: Optional[Outcome] = None
    try:
        credentials = read_credentials(inputs)
        preflight = read_preflight(inputs, credentials)
        delivery = read_delivery(inputs)
        exported = ("GITHUB_ENV",) if delivery.export_env or delivery.export_token else ()
        for variable in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", *exported):  # before anything is sent
            check_runner_file(environ, variable)
        outcome = run_flow(
            credentials,
            preflight,
            inputs,
            io,
            log=gh.info,
            mask=gh.mask,
            mask_key=gh.mask,  # the step's own stdout, which only the runner reads
            workspace=environ.get("GITHUB_WORKSPACE"),
            key_files_dir=environ.get("RUNNER_TEMP", "") if delivery.write_key_files else None,
        )
        published = publish(gh, credentials, delivery, outcome)
        if outcome.key_files is not None and credentials.key_type == "individual":
            gh.notice(INDIVIDUAL_KEY_FILES, title="Individual key files")
        if outcome.checks:
            status = "checks passed: " + ", ".join(check.check.entry for check in outcome.checks)
        else:
            status = f"not verified ({inputs.assignment('verify', 'false')})"
        minted = outcome.minted
        gh.info(
            f"Minted a token for {credentials.api.service}, key {credentials.key_id} ({credentials.key_type}), "
            f"expires {minted.expires_at_iso}; {status}."
        )
        gh.append_summary(summary_markdown(credentials, preflight, outcome, None, inputs))
    except AscTokenError as error:
        gh.error(error.message, title=error.title)
        if error.details:
            gh.info(error.details)
        with contextlib.suppress(AscTokenError):  # the summary file may be what failed
            gh.append_summary(summary_markdown(credentials, preflight, outcome, error, inputs))
        return error.exit_code
    if not published:
        gh.warning(
            "GITHUB_OUTPUT is not set, so the token output cannot be passed on; is this running outside GitHub Actions?"
        )
    return EXIT_OK
