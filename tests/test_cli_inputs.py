"""``asc-token``'s settings: flags beat the environment, plugin settings come first, one key source
for the whole chain, and every label and assignment is spelled the way the user set it."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from asc_token.api_command import build_api_parser
from asc_token.cli import flag_settings
from asc_token.errors import InputError
from asc_token.inputs import ENV_SOURCES, CliInputs
from asc_token.records import KeySource
from asc_token.settings import read_settings
from asc_token.token_command import build_parser

from .runner import ISSUER_ID, KEY_ID, KeyMaterial, invoke, settings, spelled_for

OTHER_ID = "ZYXWV98765"
NO_FLAGS: Dict[str, Optional[str]] = {}


@pytest.mark.parametrize(
    ("env", "chosen"),
    [
        ({"ASC_KEY_ID": KEY_ID}, "ASC_KEY_ID"),
        ({"APP_STORE_CONNECT_API_KEY_KEY_ID": KEY_ID}, "APP_STORE_CONNECT_API_KEY_KEY_ID"),
        ({"APP_STORE_CONNECT_KEY_IDENTIFIER": KEY_ID}, "APP_STORE_CONNECT_KEY_IDENTIFIER"),
        ({"ASC_KEY_ID": KEY_ID, "APP_STORE_CONNECT_API_KEY_KEY_ID": OTHER_ID}, "ASC_KEY_ID"),
        ({"PLUGIN_KEY_ID": KEY_ID, "ASC_KEY_ID": OTHER_ID}, "PLUGIN_KEY_ID"),
        ({"ASC_KEY_ID": "  ", "APP_STORE_CONNECT_KEY_IDENTIFIER": KEY_ID}, "APP_STORE_CONNECT_KEY_IDENTIFIER"),
    ],
)
def test_first_set_variable_wins(env: Dict[str, str], chosen: str) -> None:
    inputs = CliInputs(NO_FLAGS, env)
    assert inputs.get("key-id") == KEY_ID
    assert inputs.label("key-id") == chosen


def test_flag_beats_the_environment() -> None:
    inputs = CliInputs({"key-id": KEY_ID, "issuer-id": None}, {"ASC_KEY_ID": OTHER_ID, "ASC_ISSUER_ID": ISSUER_ID})
    assert (inputs.get("key-id"), inputs.label("key-id")) == (KEY_ID, "--key-id")
    assert (inputs.get("issuer-id"), inputs.label("issuer-id")) == (ISSUER_ID, "ASC_ISSUER_ID")


@pytest.mark.parametrize(
    ("env", "setting", "variable"),
    [
        ({"PLUGIN_PRIVATE_KEY_PATH": "a.p8", "PLUGIN_PRIVATE_KEY": "k", "ASC_PRIVATE_KEY_PATH": "b.p8"},
         "private-key-path", "PLUGIN_PRIVATE_KEY_PATH"),
        ({"PLUGIN_PRIVATE_KEY": "k", "ASC_PRIVATE_KEY_PATH": "b.p8"}, "private-key", "PLUGIN_PRIVATE_KEY"),
        ({"ASC_PRIVATE_KEY_PATH": "b.p8", "ASC_PRIVATE_KEY": "k"}, "private-key-path", "ASC_PRIVATE_KEY_PATH"),
        ({"ASC_PRIVATE_KEY": "k", "ASC_PRIVATE_KEY_B64": "k2"}, "private-key", "ASC_PRIVATE_KEY"),
        ({"ASC_PRIVATE_KEY_B64": "k", "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH": "c.p8"},
         "private-key", "ASC_PRIVATE_KEY_B64"),
        ({"APP_STORE_CONNECT_API_KEY_KEY_FILEPATH": "c.p8", "APP_STORE_CONNECT_API_KEY_KEY": "k"},
         "private-key-path", "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH"),
        ({"APP_STORE_CONNECT_API_KEY_KEY": "k", "APP_STORE_CONNECT_PRIVATE_KEY": "k2"},
         "private-key", "APP_STORE_CONNECT_API_KEY_KEY"),
        ({"APP_STORE_CONNECT_PRIVATE_KEY": "k"}, "private-key", "APP_STORE_CONNECT_PRIVATE_KEY"),
    ],
)  # fmt: skip
def test_one_key_source_for_the_whole_chain(env: Dict[str, str], setting: str, variable: str) -> None:
    """A path and contents from different tools' variables are not a conflict: the first one counts."""
    inputs = CliInputs(NO_FLAGS, {**env, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID})
    other = "private-key" if setting == "private-key-path" else "private-key-path"
    assert inputs.get(setting) == env[variable] and inputs.get(other) == ""
    key = read_settings(inputs).credentials.key
    assert key.label == variable
    assert (key.path if setting == "private-key-path" else key.contents) == env[variable]


def test_key_path_flag_beats_key_contents_in_the_environment() -> None:
    inputs = CliInputs({"private-key-path": "AuthKey.p8"}, {"ASC_PRIVATE_KEY": "k", "ASC_KEY_ID": KEY_ID,
                                                            "ASC_ISSUER_ID": ISSUER_ID})  # fmt: skip
    assert read_settings(inputs).credentials.key == KeySource("--private-key-path", path="AuthKey.p8")


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("key-id", "--key-id (or ASC_KEY_ID)"),
        ("issuer-id", "--issuer-id (or ASC_ISSUER_ID)"),
        ("private-key-path", "--private-key-path (or ASC_PRIVATE_KEY_PATH)"),
        ("private-key", "ASC_PRIVATE_KEY"),  # never a flag: argv is public
        ("key-type", "--key-type (or ASC_KEY_TYPE)"),
        ("api-url", "--api-url (or ASC_API_URL)"),
        ("verify", "--verify (or ASC_VERIFY)"),
    ],
)
def test_label_of_an_unset_setting_offers_the_flag_and_the_variable(name: str, label: str) -> None:
    assert CliInputs(NO_FLAGS, {}).label(name) == label


@pytest.mark.parametrize(
    ("flags", "env", "name", "value", "assignment"),
    [
        ({}, {}, "verify", "false", "--no-verify"),
        ({}, {}, "verify", "true", "--verify"),
        ({"verify": "true"}, {}, "verify", "false", "--no-verify"),
        ({}, {"ASC_VERIFY": "true"}, "verify", "false", "ASC_VERIFY=false"),
        ({}, {"PLUGIN_VERIFY": "true"}, "verify", "false", "PLUGIN_VERIFY=false"),
        ({}, {}, "key-type", "individual", "--key-type individual"),
        ({}, {"ASC_KEY_TYPE": "team"}, "key-type", "individual", "ASC_KEY_TYPE=individual"),
    ],
)
def test_assignment_is_written_the_way_the_user_set_it(
    flags: Dict[str, Optional[str]], env: Dict[str, str], name: str, value: str, assignment: str
) -> None:
    assert CliInputs(flags, env).assignment(name, value) == assignment


def test_sources_name_the_variables_never_the_values(key: KeyMaterial) -> None:
    inputs = CliInputs({"expires-in": "300"}, spelled_for("asc-token", settings(key, verify=None)))
    assert inputs.sources() == [
        "expires-in from --expires-in",
        "issuer-id from ASC_ISSUER_ID",
        "key-id from ASC_KEY_ID",
        "private-key from ASC_PRIVATE_KEY",
    ]
    assert not inputs.on_github


def test_a_bad_value_names_the_variable_it_came_from(key: KeyMaterial) -> None:
    with pytest.raises(InputError) as raised:
        env = {
            **spelled_for("asc-token", settings(key, verify=None, key_id=None)),
            "APP_STORE_CONNECT_KEY_IDENTIFIER": "short",
        }
        read_settings(CliInputs(NO_FLAGS, env))
    assert raised.value.message.startswith("APP_STORE_CONNECT_KEY_IDENTIFIER must be 10 characters")


# The command line itself, in process.


@pytest.mark.parametrize(
    "names",
    [
        ("APP_STORE_CONNECT_API_KEY_KEY", "APP_STORE_CONNECT_API_KEY_KEY_ID", "APP_STORE_CONNECT_API_KEY_ISSUER_ID"),
        ("APP_STORE_CONNECT_PRIVATE_KEY", "APP_STORE_CONNECT_KEY_IDENTIFIER", "APP_STORE_CONNECT_ISSUER_ID"),
        ("ASC_PRIVATE_KEY_B64", "ASC_KEY_ID", "ASC_ISSUER_ID"),
    ],
)
def test_other_tools_environment_names(tmp_path: Path, key: KeyMaterial, names: tuple) -> None:  # type: ignore[type-arg]
    key_var, id_var, issuer_var = names
    env = {key_var: key.base64_of_file, id_var: KEY_ID, issuer_var: ISSUER_ID}
    run = invoke("asc-token", tmp_path, None, ["--print", "--no-verify"], env=env)
    assert run.returncode == 0, run.stderr
    assert key.decode(run.stdout.strip())["iss"] == ISSUER_ID
    assert f"private-key from {key_var}" in run.stderr and f"key-id from {id_var}" in run.stderr


def test_key_path_from_environment_wins(tmp_path: Path, key: KeyMaterial) -> None:
    key_file = tmp_path / f"AuthKey_{KEY_ID}.p8"
    key_file.write_text(key.pem)
    named = settings(key, verify=None, private_key_path=str(key_file), private_key="garbage")
    run = invoke("asc-token", tmp_path, named, ["--print", "--no-verify"])
    assert run.returncode == 0, run.stderr
    assert "private-key-path from ASC_PRIVATE_KEY_PATH" in run.stderr
    assert key.decode(run.stdout.strip())["iss"] == ISSUER_ID


def test_private_key_on_the_command_line_is_refused(tmp_path: Path, key: KeyMaterial) -> None:
    named = settings(key, verify=None, private_key=None)
    run = invoke("asc-token", tmp_path, named, ["--private-key", "whatever", "--print"])
    assert run.returncode == 2
    assert "--private-key on the command line is refused" in run.stderr
    assert "whatever" not in run.stderr
    assert run.stdout == ""


def test_bad_input_names_the_variable(tmp_path: Path, key: KeyMaterial) -> None:
    run = invoke("asc-token", tmp_path, settings(key, verify=None, key_id="short"), ["--print", "--no-verify"])
    assert run.returncode == 2
    assert "error: ASC_KEY_ID must be 10 characters" in run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("argument", ["--privat=SECRETVALUE", "--key-id=ABCDE12345 SECRETVALUE", "SECRETVALUE"])
def test_unknown_arguments_are_refused_without_their_values(tmp_path: Path, key: KeyMaterial, argument: str) -> None:
    run = invoke("asc-token", tmp_path, settings(key, verify=None), [*argument.split(" "), "--print"])
    assert run.returncode == 2
    assert "SECRETVALUE" not in run.stderr + run.stdout


def test_unknown_platform_is_a_usage_error(tmp_path: Path, key: KeyMaterial) -> None:
    run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--platform", "teamcity", "--print"])
    assert run.returncode == 2
    assert "--platform must be one of" in run.stderr
    assert run.stdout == ""


def test_no_verify_is_named_as_given() -> None:
    inputs = CliInputs({"verify": "false"}, {})
    assert inputs.sources() == ["verify from --no-verify"]
    assert inputs.label("verify") == "--no-verify" and inputs.assignment("verify", "false") == "--no-verify"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX pipes")
def test_input_from_a_pipe_without_a_writer_does_not_hang(tmp_path: Path, key: KeyMaterial) -> None:
    fifo = tmp_path / "body"
    os.mkfifo(fifo)
    start = time.monotonic()
    named = settings(key, verify=None, api_url="http://127.0.0.1:9")
    run = invoke("asc-token api", tmp_path, named, ["-X", "POST", "--input", str(fifo), "/v1/bundleIds"])
    assert run.returncode == 2 and "gave no data within 1 s" in run.stderr, run.stderr  # QUICK_RETRIES' wait
    assert time.monotonic() - start < 5


@contextmanager
def _writer_arrives_late(fifo: Path, after: float) -> Iterator[None]:
    """After ``after`` seconds a writer opens ``fifo`` and closes it, should a reader still wait: a
    reader that waits forever ends with the test (and fails its time bound) instead of hanging it."""
    stop = threading.Event()

    def arrive() -> None:
        if stop.wait(after):
            return
        with contextlib.suppress(OSError):  # ENXIO: no reader is waiting, as it should be
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    writer = threading.Thread(target=arrive, daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join(timeout=after + 1)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX pipes")
@pytest.mark.parametrize("command", [["--print"], ["api", "/v1/apps"]])
def test_a_key_file_that_is_a_pipe_without_a_writer_does_not_hang(
    tmp_path: Path, key: KeyMaterial, command: List[str]
) -> None:
    fifo = tmp_path / "AuthKey_ABCDE12345.p8"
    os.mkfifo(fifo)
    named = settings(key, verify=None, private_key=None, api_url="http://127.0.0.1:9")
    start = time.monotonic()
    with _writer_arrives_late(fifo, after=5):
        run = invoke("asc-token", tmp_path, named, [*command, "--private-key-path", str(fifo)])
    assert time.monotonic() - start < 5
    assert run.returncode == 2 and "names a pipe that gave no data within 1 s" in run.stderr, run.stderr
    assert run.stdout == ""


# --- two names for one setting, set differently: one line says which is used --------------------


def test_two_environment_names_that_disagree_are_named_with_their_ids() -> None:
    """Common after a move from fastlane: asc's name and fastlane's, set to different keys."""
    inputs = CliInputs(NO_FLAGS, {"ASC_KEY_ID": KEY_ID, "APP_STORE_CONNECT_API_KEY_KEY_ID": OTHER_ID})
    assert inputs.get("key-id") == KEY_ID
    assert inputs.disagreements() == [
        f"key-id: ASC_KEY_ID ('{KEY_ID}') is used; APP_STORE_CONNECT_API_KEY_KEY_ID ('{OTHER_ID}') is also set, "
        "to a different value, and ignored."
    ]


def test_a_flag_and_a_variable_that_disagree() -> None:
    inputs = CliInputs({"key-id": KEY_ID, "issuer-id": None}, {"ASC_KEY_ID": OTHER_ID, "ASC_ISSUER_ID": ISSUER_ID})
    (line,) = inputs.disagreements()
    assert line.startswith(f"key-id: --key-id ('{KEY_ID}') is used; ASC_KEY_ID ('{OTHER_ID}') is also set")


@pytest.mark.parametrize(
    "env",
    [
        {"ASC_KEY_ID": KEY_ID, "APP_STORE_CONNECT_API_KEY_KEY_ID": f" {KEY_ID}\n"},  # the same, once trimmed
        {"ASC_KEY_ID": KEY_ID, "APP_STORE_CONNECT_API_KEY_KEY_ID": "  "},  # set, but empty
        {"PLUGIN_ISSUER_ID": ISSUER_ID, "ASC_ISSUER_ID": ISSUER_ID},
    ],
)
def test_names_that_agree_say_nothing(env: Dict[str, str]) -> None:
    assert CliInputs(NO_FLAGS, env).disagreements() == []


def test_a_setting_this_command_does_not_read_says_nothing() -> None:
    inputs = CliInputs(NO_FLAGS, {"ASC_CHECKS": "apps", "PLUGIN_CHECKS": "testflight"}, reads=("key-id",))
    assert inputs.disagreements() == []


def test_two_keys_are_named_never_shown(key: KeyMaterial) -> None:
    second = KeyMaterial(ec.generate_private_key(ec.SECP256R1()))
    inputs = CliInputs(NO_FLAGS, {"ASC_PRIVATE_KEY": key.pem, "APP_STORE_CONNECT_API_KEY_KEY": second.pem})
    (line,) = inputs.disagreements()
    assert line == (
        "private-key: ASC_PRIVATE_KEY is used; APP_STORE_CONNECT_API_KEY_KEY is also set, to a different value, "
        "and ignored."
    )
    for fragment in key.secret_fragments() + second.secret_fragments():
        assert fragment not in line


def test_a_key_pasted_into_an_id_setting_is_not_shown(key: KeyMaterial) -> None:
    body = "".join(key.pem.splitlines()[1:-1])
    inputs = CliInputs(NO_FLAGS, {"ASC_KEY_ID": KEY_ID, "APP_STORE_CONNECT_API_KEY_KEY_ID": body})
    (line,) = inputs.disagreements()
    assert "not shown" in line and body[:20] not in line


def test_a_key_path_and_key_contents_from_different_tools_stay_the_documented_choice(
    tmp_path: Path, key: KeyMaterial
) -> None:
    env = {"ASC_PRIVATE_KEY_PATH": "/keys/AuthKey.p8", "APP_STORE_CONNECT_API_KEY_KEY": key.pem}
    inputs = CliInputs(NO_FLAGS, env)
    assert inputs.sources() == ["private-key-path from ASC_PRIVATE_KEY_PATH"]
    assert inputs.disagreements() == []
    paths = CliInputs({"private-key-path": "/a/AuthKey.p8"}, {"ASC_PRIVATE_KEY_PATH": "/b/AuthKey.p8"})
    assert paths.disagreements() == [
        "private-key-path: --private-key-path ('/a/AuthKey.p8') is used; ASC_PRIVATE_KEY_PATH ('/b/AuthKey.p8') "
        "is also set, to a different value, and ignored."
    ]


def test_asc_token_logs_the_disagreement(tmp_path: Path, key: KeyMaterial) -> None:
    env = {"APP_STORE_CONNECT_API_KEY_KEY_ID": OTHER_ID}
    run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--print", "--no-verify"], env=env)
    assert run.returncode == 0, run.stderr
    assert f"ASC_KEY_ID ('{KEY_ID}') is used; APP_STORE_CONNECT_API_KEY_KEY_ID ('{OTHER_ID}')" in run.stderr
    key.decode(run.stdout.strip())
    assert jwt.get_unverified_header(run.stdout.strip())["kid"] == KEY_ID


def test_asc_token_api_logs_the_disagreement(tmp_path: Path, key: KeyMaterial) -> None:
    named = settings(key, verify=None, api_url="ftp://refused.example")
    called = invoke("asc-token api", tmp_path, named, ["/v1/apps"], env={"APP_STORE_CONNECT_API_KEY_KEY_ID": OTHER_ID})
    assert called.returncode == 2  # refused before any request: the line came first
    lines = called.log_lines
    assert any(f"APP_STORE_CONNECT_API_KEY_KEY_ID ('{OTHER_ID}') is also set" in line for line in lines), lines


def test_each_command_reads_the_settings_it_has_flags_for() -> None:
    """Which environment variables a command reads follows from its flags: pinned here, so a renamed
    flag cannot silently stop (or start) reading a variable."""
    token_command = set(flag_settings(build_parser().parse_args([])))
    api_command = set(flag_settings(build_api_parser().parse_args(["/v1/apps"])))
    assert token_command == set(ENV_SOURCES)
    assert api_command == token_command - {"verify", "checks", "notary-url"}  # asc-token api runs no checks
