"""upload/action.yml's step (``entrypoint.py upload`` on GitHub Actions): the upload through the stand-in, its
outputs read from GITHUB_OUTPUT as the runner reads them, its job summary, failures annotated, the key from
an earlier asc-token-action step's export-env, masking; and the composite action run by the tests' runner."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import yaml

from asc_token.inputs import COMPOSITE_MARKER
from asc_token.upload_command import ACTION_INPUTS
from devtools.standin import DEMO_BUNDLE_ID, AppStoreConnectStandIn

from .builds import demo_ipa
from .composite import run_composite
from .conftest import copy_of
from .runner import (
    ISSUER_ID,
    KEY_ID,
    ROOT,
    FakeTime,
    KeyMaterial,
    Run,
    assert_no_secrets,
    invoke,
    one_error,
    rendered,
    settings,
)

OUTPUTS = ("build-upload-id", "build-id", "upload-state", "processing-state")


def workspace_ipa(workdir: Path, size: int = 1024 * 1024, **changes: Any) -> Path:
    """An IPA of the stand-in's demo app in the step's workspace (the runner's GITHUB_WORKSPACE)."""
    workspace = workdir / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    return demo_ipa(workspace, size, **changes)


def key_inputs(key: KeyMaterial, api: AppStoreConnectStandIn) -> Dict[str, str]:
    """The upload step's key inputs, as settings() names them (only the inputs upload/action.yml has)."""
    named = settings(key, standin=api)
    return {name: named[name] for name in ("private-key", "key-id", "issuer-id", "api-url")}


def upload_step(
    workdir: Path,
    named: Dict[str, str],
    *,
    env: Optional[Dict[str, str]] = None,
    composite: bool = True,
    sleep: Optional[Callable[[float], None]] = None,
) -> Run:
    return invoke("action", workdir, named, ["upload"], composite=composite, env=env, sleep=sleep or FakeTime().sleep)


def cancelled(seconds: float) -> None:
    """The runner's cancel (SIGINT) arriving while the step waits."""
    raise KeyboardInterrupt


@pytest.fixture
def small_parts(api: AppStoreConnectStandIn) -> AppStoreConnectStandIn:
    api.uploads.part_size = 256 * 1024
    return api


def masked_tokens(run: Run) -> List[str]:
    """The bearer tokens the step registered with ::add-mask:: (JWTs), in order."""
    return [line.split("::", 2)[2] for line in run.stdout.splitlines() if line.startswith("::add-mask::eyJ")]


def assert_masked_first(run: Run, key: KeyMaterial) -> None:
    """Each token is masked before anything else is written, and shown nowhere but in its mask command."""
    tokens = masked_tokens(run)
    assert tokens, "no token was registered with ::add-mask::"
    lines = run.stdout.splitlines()
    first_mask = next(i for i, line in enumerate(lines) if line.startswith("::add-mask::"))
    created = next(i for i, line in enumerate(lines) if "Build upload" in line and "created" in line)
    assert first_mask < created
    for token in tokens:
        assert not [line for line in lines if token in line and not line.startswith("::add-mask::")]
        assert token not in run.stderr and token not in run.summary
    assert_no_secrets(run, key.secret_fragments(), key=key)


@pytest.mark.parametrize("composite", [True, False], ids=["composite", "runner-form"])
def test_the_step_uploads_waits_and_says_so(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn, composite: bool
) -> None:
    """`file` relative to the workspace, `wait` true by default: outputs, summary, the bytes at Apple."""
    api = small_parts
    path = workspace_ipa(tmp_path)
    run = upload_step(tmp_path, {"file": path.name, **key_inputs(key, api)}, composite=composite)
    assert run.returncode == 0, run.log
    outputs = run.outputs
    assert outputs["upload-state"] == "COMPLETE" and outputs["processing-state"] == "VALID", outputs
    assert outputs["build-upload-id"] in api.uploads.build_uploads and outputs["build-id"]
    stored = api.uploads.files[api.uploads.build_uploads[outputs["build-upload-id"]].files[0]]
    assert api.storage.assembled(stored.storage_key) == path.read_bytes()
    assert not api.storage.credentials_seen(), "no credential ever reaches object storage"
    summary = run.summary
    assert "### App Store Connect build upload" in summary
    size = path.stat().st_size
    assert f"App.ipa ({size / (1024 * 1024):.1f} MiB, {size} bytes)" in summary
    for row in ("| Version | 1.4.0 |", "| Build number | 42 |", "| Platform | IOS |", "| Time |"):
        assert row in summary, summary
    assert f"`{outputs['build-upload-id']}` COMPLETE" in summary and f"`{outputs['build-id']}` VALID" in summary
    assert "<table>" in rendered(summary)
    assert run.stdout.splitlines()[-1].startswith("Uploaded: build upload ")
    assert_masked_first(run, key)


def test_without_wait_the_step_ends_once_the_file_is_delivered(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    path = workspace_ipa(tmp_path)
    run = upload_step(tmp_path, {"file": str(path), "wait": "false", **key_inputs(key, small_parts)})
    assert run.returncode == 0, run.log
    assert run.outputs["build-upload-id"] and "processing-state" not in run.outputs
    assert run.outputs["upload-state"] != "AWAITING_UPLOAD", "the state as it is once the file is delivered"
    assert "| File delivery | COMPLETE |" in run.summary


def test_the_key_and_ids_come_from_an_earlier_steps_export_env(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    """asc-token-action with write-key-files and export-env, then the upload step with no key input."""
    api = small_parts
    token_step = invoke(
        "action",
        tmp_path / "token",
        settings(key, api_url=api.url, write_key_files="true", export_env="true"),
        composite=True,
    )
    assert token_step.returncode == 0, token_step.log
    exported = token_step.env_file
    assert {"ASC_KEY_ID", "ASC_ISSUER_ID", "ASC_PRIVATE_KEY_PATH", "ASC_API_URL"} <= set(exported)
    path = workspace_ipa(tmp_path / "upload")
    run = upload_step(tmp_path / "upload", {"file": path.name}, env=exported)
    assert run.returncode == 0, run.log
    assert run.outputs["processing-state"] == "VALID"
    said = next(line for line in run.stdout.splitlines() if line.startswith("Settings from an earlier step"))
    for setting in (
        "key-id from ASC_KEY_ID",
        "issuer-id from ASC_ISSUER_ID",
        "private-key-path from ASC_PRIVATE_KEY_PATH",
    ):
        assert setting in said, said
    assert_masked_first(run, key)


def test_a_key_input_wins_over_the_exported_key(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    """`private-key` given: the exported ASC_PRIVATE_KEY_PATH is not used (nor is it a second key setting)."""
    path = workspace_ipa(tmp_path)
    exported = {"ASC_PRIVATE_KEY_PATH": str(tmp_path / "no-such-key.p8"), "ASC_KEY_ID": "ZZZZZ99999"}
    run = upload_step(tmp_path, {"file": path.name, "wait": "false", **key_inputs(key, small_parts)}, env=exported)
    assert run.returncode == 0, run.log
    assert "Settings from an earlier step" not in run.log


def test_an_exported_setting_that_is_wrong_is_named_by_its_variable(tmp_path: Path, key: KeyMaterial) -> None:
    path = workspace_ipa(tmp_path)
    run = upload_step(
        tmp_path,
        {"file": path.name, "private-key": key.pem, "issuer-id": ISSUER_ID},
        env={"ASC_KEY_ID": "AuthKey_ABCDE12345.p8"},
    )
    assert run.returncode == 2
    error = one_error(run, with_title=True)
    assert error.startswith("::error title=Invalid input::ASC_KEY_ID holds the key's file name"), error
    assert "ASC_KEY_ID=ABCDE12345" in error


def test_no_key_at_all_says_how_to_give_one(tmp_path: Path) -> None:
    path = workspace_ipa(tmp_path)
    run = upload_step(tmp_path, {"file": path.name, "key-id": KEY_ID, "issuer-id": ISSUER_ID})
    assert run.returncode == 2
    error = one_error(run)
    assert "set `private-key`" in error and "`private-key-path`" in error
    assert "`export-env: true`" in error, error
    assert "No private key was given" in run.summary


def test_a_missing_file_input_is_named_as_the_input(tmp_path: Path, key: KeyMaterial) -> None:
    run = upload_step(tmp_path, {"file": "", "private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID})
    assert run.returncode == 2
    assert (
        one_error(run, with_title=True)
        == "::error title=Invalid input::`file` is empty: give the .ipa or .pkg to upload."
    )
    assert not run.outputs
    assert "**Invalid input**" in run.summary


def test_a_pkg_without_a_version_names_the_input_not_the_flag(tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "workspace").mkdir(parents=True)
    (tmp_path / "workspace" / "App.pkg").write_bytes(b"xar!" + bytes(64))
    named = {
        "file": "App.pkg",
        "bundle-id": DEMO_BUNDLE_ID,
        "private-key": key.pem,
        "key-id": KEY_ID,
        "issuer-id": ISSUER_ID,
    }
    run = upload_step(tmp_path, named)
    assert run.returncode == 2
    error = one_error(run)
    assert "`version`" in error and "--version" not in error, error


def test_a_duplicate_is_annotated_and_summarised(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    path = workspace_ipa(tmp_path)
    named = {"file": path.name, "wait": "false", **key_inputs(key, small_parts)}
    assert upload_step(tmp_path / "first", {**named, "file": str(path)}).returncode == 0
    run = upload_step(tmp_path, named)
    assert run.returncode == 1
    error = one_error(run, with_title=True)
    assert error.startswith("::error title=Build number already used::"), error
    assert "`build-number`" in error and "--build-number" not in error
    assert not run.outputs, "no build upload was created"
    assert "**Build number already used**" in run.summary and "| Build number | 42 |" in run.summary
    assert_no_secrets(run, key.secret_fragments(), key=key)


def test_a_processing_failure_gives_its_outputs_apples_reasons_and_warnings(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api = small_parts
    api.uploads.processing_outcome = "FAILED"
    api.uploads.processing_warnings = [{"code": "90725", "description": "SDK version issue <b>|</b>"}]
    path = workspace_ipa(tmp_path)
    run = upload_step(tmp_path, {"file": path.name, **key_inputs(key, api)})
    assert run.returncode == 1, run.log
    assert run.outputs["upload-state"] == "FAILED" and run.outputs["build-upload-id"]
    error = one_error(run, with_title=True)
    assert error.startswith("::error title=Processing failed::"), error
    summary = run.summary
    assert "**Apple's warnings**" in summary and "90725" in summary
    warnings = [line for line in run.stdout.splitlines() if line.startswith("::warning")]
    assert warnings == ["::warning title=App Store Connect warning::90725: SDK version issue <b>|</b>"], warnings
    assert "<b>" not in rendered(summary), "Apple's text is shown as text"
    assert "**Processing failed**" in summary and f"`{run.outputs['build-upload-id']}` FAILED" in summary
    reasons = [item["code"] for item in api.uploads.build_uploads[run.outputs["build-upload-id"]].errors]
    assert all(code in summary for code in reasons)


def test_the_composite_upload_step_runs_on_the_runtime(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn, golden_tool_cache: Path
) -> None:
    """upload/action.yml as the runner runs it: inputs mapped by its env:, scripts/start.sh, bootstrap.py,
    entrypoint.py upload; its outputs evaluated from the step's, as the runner does."""
    tool_cache = copy_of(golden_tool_cache, tmp_path)
    path = workspace_ipa(tmp_path / "run")
    result = run_composite(
        tmp_path / "run",
        {"file": path.name, **key_inputs(key, small_parts)},
        tool_cache=tool_cache,
        action_file="upload/action.yml",
    )
    assert result.returncode == 0, result.log
    assert result.outputs["processing-state"] == "VALID" and result.outputs["upload-state"] == "COMPLETE"
    assert result.outputs["build-upload-id"] in small_parts.uploads.build_uploads
    assert "| Version | 1.4.0 |" in result.summary
    assert re.search(r"^::add-mask::eyJ", result.stdout, re.MULTILINE)
    assert_no_secrets(result, key.secret_fragments(), key=key)


def test_a_cancel_before_the_commit_deletes_the_upload_and_says_so(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    """A part refused, the retry's wait cancelled: exit 130, the build upload deleted, its outputs and summary."""
    api = small_parts
    api.storage.fail(1, status=500, times=5)
    path = workspace_ipa(tmp_path)
    run = upload_step(tmp_path, {"file": path.name, **key_inputs(key, api)}, sleep=cancelled)
    assert run.returncode == 130, run.log
    upload_id = run.outputs["build-upload-id"]
    assert upload_id in api.uploads.deleted_build_uploads
    assert f"`{upload_id}` AWAITING\\_UPLOAD (deleted)" in run.summary, run.summary
    assert "**Interrupted**" in run.summary and "the build upload was deleted" in run.summary
    assert_no_secrets(run, key.secret_fragments(), key=key)


def test_a_cancel_after_the_commit_keeps_the_upload(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api = small_parts
    path = workspace_ipa(tmp_path)
    run = upload_step(tmp_path, {"file": path.name, **key_inputs(key, api)}, sleep=cancelled)
    assert run.returncode == 130, run.log
    assert run.outputs["build-upload-id"] not in api.uploads.deleted_build_uploads
    assert "Apple goes on processing it" in run.summary


def test_upload_action_yml_maps_every_input_the_step_reads() -> None:
    """upload/action.yml's inputs are exactly those the step reads, each passed as INPUT_<NAME> in env: under
    the composite marker (never pasted into the script), and each output is the step's."""
    action = yaml.safe_load((ROOT / "upload" / "action.yml").read_text())
    assert tuple(action["inputs"]) == ACTION_INPUTS
    step = action["runs"]["steps"][0]
    name, value = COMPOSITE_MARKER
    assert step["env"][name] == value
    mapped = {key: text for key, text in step["env"].items() if key.startswith("INPUT_")}
    assert mapped == {f"INPUT_{n.replace('-', '_').upper()}": f"${{{{ inputs.{n} }}}}" for n in ACTION_INPUTS}
    assert action["inputs"]["file"]["required"] is True and action["inputs"]["wait"]["default"] == "true"
    assert {n: spec["value"] for n, spec in action["outputs"].items()} == {
        n: f"${{{{ steps.{step['id']}.outputs.{n} }}}}" for n in OUTPUTS
    }
