"""Which CI platform a run is on, where its workspace and token file are, and what ``--platform`` does."""

from __future__ import annotations

import io
import os
from typing import Dict, List, Optional

import pytest

from asc_token.errors import InputError
from asc_token.platforms import PLATFORM_NAMES, PLATFORMS, Azure, GitHub, Platform, platform_for

DETECTED = [
    ({}, "generic"),
    ({"CI": "true"}, "generic"),
    ({"GITHUB_ACTIONS": "true"}, "github"),
    ({"GITHUB_ACTIONS": "false"}, "generic"),
    ({"TF_BUILD": "True"}, "azure"),
    ({"CIRCLECI": "true"}, "circleci"),
    ({"BITRISE_IO": "true"}, "bitrise"),
    ({"BITRISE_BUILD_NUMBER": "12"}, "bitrise"),
    ({"BUILDKITE": "true"}, "buildkite"),
    ({"GITLAB_CI": "true"}, "gitlab"),
    ({"CI": "woodpecker"}, "woodpecker"),
    ({"CI_PIPELINE_NUMBER": "3", "CI_SYSTEM_NAME": "woodpecker"}, "woodpecker"),
    ({"DRONE": "true"}, "drone"),
    ({"JENKINS_URL": "https://ci.example"}, "jenkins"),
    ({"JENKINS_HOME": "/var/jenkins"}, "jenkins"),
    ({"BITBUCKET_BUILD_NUMBER": "7"}, "bitbucket"),
    # Several at once: some platforms set another's variables for compatibility.
    ({"CI": "woodpecker", "DRONE": "true"}, "woodpecker"),
    ({"GITHUB_ACTIONS": "true", "GITLAB_CI": "true", "JENKINS_URL": "x"}, "github"),
    ({"TF_BUILD": "True", "JENKINS_HOME": "/j"}, "azure"),
    ({"BITRISE_IO": "true", "BITBUCKET_BUILD_NUMBER": "7"}, "bitrise"),
    ({"JENKINS_URL": "x", "BITBUCKET_BUILD_NUMBER": "7"}, "jenkins"),
]


@pytest.mark.parametrize(("env", "name"), DETECTED)
def test_detection(env: Dict[str, str], name: str) -> None:
    assert platform_for(env).name == name


def test_every_platform_is_detected_by_some_case() -> None:
    assert {name for _, name in DETECTED} == set(PLATFORM_NAMES)


@pytest.mark.parametrize("name", PLATFORM_NAMES)
def test_platform_flag_overrides_detection(name: str) -> None:
    assert platform_for({"GITHUB_ACTIONS": "true", "GITLAB_CI": "true"}, name).name == name


def test_names_are_unique_and_generic_is_last() -> None:
    assert len(set(PLATFORM_NAMES)) == len(PLATFORM_NAMES) == len(PLATFORMS) + 1
    assert PLATFORM_NAMES[-1] == Platform.name == "generic"


WORKSPACES = [
    ("github", {"GITHUB_WORKSPACE": "/w"}, "/w"),
    ("azure", {"BUILD_SOURCESDIRECTORY": "/w", "SYSTEM_DEFAULTWORKINGDIRECTORY": "/x"}, "/w"),
    ("azure", {"SYSTEM_DEFAULTWORKINGDIRECTORY": "/x"}, "/x"),
    ("circleci", {"CIRCLE_WORKING_DIRECTORY": "/w"}, "/w"),
    ("bitrise", {"BITRISE_SOURCE_DIR": "/w"}, "/w"),
    ("buildkite", {"BUILDKITE_BUILD_CHECKOUT_PATH": "/w"}, "/w"),
    ("gitlab", {"CI_PROJECT_DIR": "/w"}, "/w"),
    ("woodpecker", {"CI_WORKSPACE": "/w"}, "/w"),
    ("drone", {"DRONE_WORKSPACE": "/w", "CI_WORKSPACE": "/x"}, "/w"),
    ("jenkins", {"WORKSPACE": "/w"}, "/w"),
    ("bitbucket", {"BITBUCKET_CLONE_DIR": "/w"}, "/w"),
    ("generic", {"GITHUB_WORKSPACE": "/w"}, None),
]


@pytest.mark.parametrize(("name", "env", "workspace"), WORKSPACES)
def test_workspace(name: str, env: Dict[str, str], workspace: Optional[str]) -> None:
    assert platform_for(env, name)(env, log=print).workspace() == workspace


TOKEN_FILES = [
    ("buildkite", {"BUILDKITE_BUILD_CHECKOUT_PATH": "/w"}, os.path.join("/w", ".asc-token")),
    ("woodpecker", {"CI_WORKSPACE": "/w"}, os.path.join("/w", ".asc-token")),
    ("woodpecker", {"CI_WORKSPACE": "/w", "PLUGIN_OUTPUT_FILE": "/out/t"}, "/out/t"),
    ("drone", {"DRONE_WORKSPACE": "/w"}, os.path.join("/w", ".asc-token")),
    ("bitbucket", {"BITBUCKET_CLONE_DIR": "/w"}, os.path.join("/w", ".asc-token")),
    ("github", {"GITHUB_WORKSPACE": "/w"}, None),
    ("gitlab", {"CI_PROJECT_DIR": "/w"}, None),
    ("azure", {}, None),
    ("circleci", {}, None),
    ("bitrise", {}, None),
    ("jenkins", {"WORKSPACE": "/w"}, None),
    ("generic", {}, None),
]


@pytest.mark.parametrize(("name", "env", "token_file"), TOKEN_FILES)
def test_token_file(name: str, env: Dict[str, str], token_file: Optional[str]) -> None:
    assert platform_for(env, name)(env, log=print).token_file() == token_file


def test_azure_masks_nothing_on_stdout_under_print() -> None:
    """With --print, stdout is the caller's $(...): no logging command may land there."""
    out = io.StringIO()
    azure = Azure({}, log=print, stdout=out)
    azure.mask("line one\nline two", printing=True)
    assert out.getvalue() == ""
    azure.mask("line one\nline two", printing=False)
    assert out.getvalue() == "##vso[task.setsecret]line one\n##vso[task.setsecret]line two\n"


def test_error_reports_stay_single_commands(capsys: pytest.CaptureFixture[str]) -> None:
    logged: List[str] = []
    Azure({}, log=logged.append).report_error(InputError("two\nlines ] with a bracket", details="more"))
    assert logged == ["##[error]two lines ) with a bracket", "more"]
    GitHub({}, log=logged.append).report_error(InputError("two\nlines", details="more"))
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "::error title=Invalid input::two%0Alines"
