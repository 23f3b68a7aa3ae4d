"""The action reads its inputs as the runner passes them: `with:` only, never a job-level ``INPUT_*``."""

from __future__ import annotations

from pathlib import Path
from typing import List

import jwt
import yaml

from asc_token.inputs import COMPOSITE_MARKER, GitHubInputs

from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, assert_no_secrets, invoke, settings

# --- the composite reads INPUT_KEY_ID, the container INPUT_KEY-ID, never both -----------------


def test_composite_ignores_a_job_level_hyphen_input() -> None:
    env = {"INPUT_KEY_ID": KEY_ID, "INPUT_API_URL": "https://api.appstoreconnect.apple.com"}
    env.update([COMPOSITE_MARKER])
    env["INPUT_API-URL"] = "http://127.0.0.1:9"  # a job-level `env:` entry, not the step's `with:`
    env["INPUT_ISSUER_ID"] = ""  # an input left empty in `with:` stays empty...
    env["INPUT_ISSUER-ID"] = "11111111-2222-3333-4444-555555555555"  # ...whatever the job sets
    inputs = GitHubInputs(env)
    assert inputs.get("api-url") == "https://api.appstoreconnect.apple.com"
    assert inputs.get("key-id") == KEY_ID
    assert inputs.get("issuer-id") == ""


def test_container_ignores_an_underscore_input() -> None:
    env = {"INPUT_KEY-ID": KEY_ID, "INPUT_API-URL": "", "INPUT_API_URL": "http://127.0.0.1:9"}
    inputs = GitHubInputs(env)
    assert inputs.get("api-url") == ""
    assert inputs.get("key-id") == KEY_ID


def test_container_ignores_a_job_level_underscore_key_id() -> None:
    """A job's `env: INPUT_KEY_ID` once switched the container's reader to underscores: the job beat `with:`."""
    logged: List[str] = []
    inputs = GitHubInputs(
        {"INPUT_KEY-ID": KEY_ID, "INPUT_KEY_ID": "ZZZZZ99999", "INPUT_ISSUER_ID": ISSUER_ID}, logged.append
    )
    assert inputs.get("key-id") == KEY_ID
    assert inputs.get("issuer-id") == ""  # only the runner's form of `with:` counts
    assert inputs.get("key-id") == KEY_ID  # said once per setting
    assert logged == [
        f"`key-id`: INPUT_KEY-ID ('{KEY_ID}') is used; INPUT_KEY_ID ('ZZZZZ99999') is also set, to a different "
        "value, and ignored (this action reads the step's `with:` as INPUT_KEY-ID; INPUT_KEY_ID comes from an `env:`).",
        f"`issuer-id`: INPUT_ISSUER-ID (empty) is used; INPUT_ISSUER_ID ('{ISSUER_ID}') is also set, to a different "
        "value, and ignored (this action reads the step's `with:` as INPUT_ISSUER-ID; INPUT_ISSUER_ID comes from an "
        "`env:`).",
    ]


def test_the_composite_says_so_in_its_own_step_env() -> None:
    step = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"][0]
    name, value = COMPOSITE_MARKER
    assert step["env"][name] == value
    assert all(not key.startswith("INPUT_") or "-" not in key for key in step["env"])


def test_the_action_logs_an_ignored_job_level_input(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke("action", tmp_path, settings(key), env={"INPUT_KEY_ID": "ZZZZZ99999"})
    assert result.returncode == 0, result.log
    assert jwt.get_unverified_header(result.outputs["token"])["kid"] == KEY_ID
    assert "INPUT_KEY_ID ('ZZZZZ99999') is also set, to a different value, and ignored" in result.stdout
    assert_no_secrets(result, key.secret_fragments())


def test_the_composite_logs_an_ignored_job_level_input(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke("action", tmp_path, settings(key), composite=True, env={"INPUT_KEY-ID": "ZZZZZ99999"})
    assert result.returncode == 0, result.log
    assert jwt.get_unverified_header(result.outputs["token"])["kid"] == KEY_ID
    assert "INPUT_KEY-ID ('ZZZZZ99999') is also set" in result.stdout
