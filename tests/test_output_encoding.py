"""UTF-8 out, whatever the locale or code page: the runner reads its pipes as UTF-8.

On Windows Python writes a pipe in the ANSI code page, and ``-I`` ignores PYTHONUTF8; on Linux an
ISO-8859-1 locale does the same. Non-Latin text (an app's name, a proxy's page title, an input)
must reach stdout, stderr and GITHUB_OUTPUT as UTF-8, never as a UnicodeEncodeError (exit 3).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from asc_token.world import Io, utf8_stream
from devtools.standin import AppStoreConnectStandIn, Fault

from .conftest import made_once
from .runner import PROCESS, KeyMaterial, invoke, one_error, settings

ROCKET = "Rocket \U0001f680 \u30ed\u30b1\u30c3\u30c8"  # Rocket 🚀 ロケット
DENIED = "\u8bbf\u95ee\u88ab\u62d2\u7edd"  # 访问被拒绝, a proxy's "access denied" page
BUNDLE_ID = "com.example.rocket"


def rocket_app(api: AppStoreConnectStandIn) -> None:
    """The stand-in's next answer: one app named ROCKET, as the app:<bundle-id> check asks for it."""
    app = {"type": "apps", "id": "1234567890", "attributes": {"name": ROCKET, "bundleId": BUNDLE_ID}}
    api.inject(Fault("raw-json", status=200, detail=json.dumps({"data": [app], "meta": {"paging": {"total": 1}}})))


# --- in this process: the step's streams are latin-1 byte streams --------------------------------


def test_an_app_name_reaches_a_latin1_stdout_as_utf8(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    rocket_app(api)
    result = invoke("action", tmp_path, settings(key, standin=api, checks=[f"app:{BUNDLE_ID}"]), encoding="latin-1")
    assert result.returncode == 0, result.log
    assert ROCKET in result.stdout and result.outputs["app-name"] == ROCKET


def test_a_proxy_page_title_reaches_a_latin1_stdout_as_utf8(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("html-page", status=403, title=DENIED, detail="blocked"))
    result = invoke("action", tmp_path, settings(key, standin=api), encoding="latin-1")
    assert result.returncode == 1, result.log
    assert DENIED in one_error(result)


def test_an_input_reaches_a_latin1_stdout_as_utf8(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke("action", tmp_path, settings(key, expires_in=ROCKET), encoding="latin-1")
    assert result.returncode == 2, result.log
    assert ROCKET in one_error(result)


def test_text_that_is_not_utf8_is_backslash_escaped() -> None:
    """Invalid UTF-8 from the environment or argv arrives surrogate-escaped: written escaped, never an error."""
    for encoding, errors in (("latin-1", "strict"), ("utf-8", "strict"), ("utf-8", "surrogateescape")):
        stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors=errors)
        Io(stdout=stream, stderr=stream).err().write(f"bad \udcff {ROCKET}\n")
        stream.flush()
        assert stream.buffer.getvalue().decode("utf-8") == f"bad \\udcff {ROCKET}\n"


def test_a_stream_already_writing_utf8_is_left_as_it_is() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    assert utf8_stream(stream) is stream and stream.encoding == "utf-8"


# --- a real process under an ISO-8859-1 locale, started with -I ---------------------------------


@pytest.fixture(scope="session")
def latin1_locale(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    """LOCPATH and LC_ALL for an en_US.ISO-8859-1 locale made here (this machine has only C and
    C.UTF-8, under which Python writes UTF-8 by itself); skipped where it cannot be made."""
    localedef = shutil.which("localedef")
    if localedef is None or sys.platform != "linux":
        pytest.skip("localedef (glibc's libc-bin) is needed to make an ISO-8859-1 locale")

    def make(folder: Path) -> bool:
        made = subprocess.run(
            [localedef, "-i", "en_US", "-f", "ISO-8859-1", str(folder / "en_US.ISO-8859-1")],
            capture_output=True,
            timeout=60,
            check=False,
        )
        return made.returncode in (0, 1) and (folder / "en_US.ISO-8859-1").is_dir()  # 1: warnings only

    folder = made_once(tmp_path_factory, "latin1-locale", make)
    if folder is None:
        pytest.skip("localedef could not make an ISO-8859-1 locale here")
    env = {"LOCPATH": str(folder), "LC_ALL": "en_US.ISO-8859-1", "PYTHONUTF8": "1"}  # -I ignores PYTHONUTF8
    probe = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; print(sys.stdout.encoding, sys.stderr.encoding)"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.stdout.split() != ["iso8859-1", "iso8859-1"]:
        pytest.skip(f"the ISO-8859-1 locale did not take effect: {probe.stdout!r} {probe.stderr!r}")
    return env


def test_a_real_process_under_a_latin1_locale_writes_utf8(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, latin1_locale: Dict[str, str]
) -> None:
    """The app name, a proxy page's title and an input, each from a process started as the action's."""
    rocket_app(api)
    inputs = settings(key, standin=api, checks=[f"app:{BUNDLE_ID}"])
    named = invoke("action", tmp_path / "app", inputs, mode=PROCESS, env=latin1_locale, isolated=True)
    assert named.returncode == 0, named.log
    assert ROCKET in named.stdout and named.outputs["app-name"] == ROCKET  # read back as UTF-8, strictly
    api.inject(Fault("html-page", status=403, title=DENIED, detail="blocked"))
    page = invoke(
        "action", tmp_path / "page", settings(key, standin=api), mode=PROCESS, env=latin1_locale, isolated=True
    )
    assert page.returncode == 1 and DENIED in one_error(page), page.log
    # The environment is read in the locale's encoding: the child reads b"caf\xe9" (its ISO-8859-1) as "café".
    latin1_cafe = b"caf\xe9".decode("utf-8", "surrogateescape")  # passed on as those bytes
    inputs = settings(key, expires_in=latin1_cafe)
    typed = invoke("action", tmp_path / "input", inputs, mode=PROCESS, env=latin1_locale, isolated=True)
    assert typed.returncode == 2 and "café" in one_error(typed), typed.log
