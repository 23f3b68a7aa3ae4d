"""A stream the caller closed or stopped reading: stdout never receives what belongs to stderr, and
a reader that went away is a failure (exit 1), said quietly.

``TOKEN=$(asc-token --print 2>&-)``: Python has no sys.stderr then, and ``print(file=None)`` writes to
stdout, so the log and the ``::add-mask::`` line used to end up in ``$TOKEN``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .runner import ISSUER_ID, KEY_ID, PROCESS, KeyMaterial, detection_env, invoke, needs_cli, settings, standin_running


@needs_cli
@pytest.mark.parametrize("platform", ["github", "azure", "generic"])
def test_with_stderr_closed_stdout_holds_the_token_alone(tmp_path: Path, key: KeyMaterial, platform: str) -> None:
    """The log and the mask commands are dropped with the stream they belong to (as with 2>/dev/null)."""
    env = detection_env(platform, tmp_path)
    run = invoke("asc-token", tmp_path, settings(key), ["--print", "--no-verify"], mode=PROCESS, env=env,
                 bash_line='exec "$@" 2>&-')  # fmt: skip
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.count("\n") == 1 and run.stdout.endswith("\n"), run.stdout
    assert key.decode(run.stdout.strip())["iss"] == ISSUER_ID


@needs_cli
def test_a_page_larger_than_a_pipe_to_a_reader_that_stops_exits_1(tmp_path: Path, key: KeyMaterial) -> None:
    """`asc-token api ... | head -c 10`: the rest could not be written, which is a failure. Unbuffered (as
    CI images often set PYTHONUNBUFFERED), such a pipe takes part of one large write and reports no error."""
    with standin_running(app_count=100, app_size_bytes=2000) as api:  # one page of about 200 KB
        api.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        named, env = settings(key, verify=None, api_url=api.url), {"PYTHONUNBUFFERED": "1"}
        run = invoke("asc-token api", tmp_path, named, ["/v1/apps?limit=100"], mode=PROCESS, env=env,
                     bash_line='set -o pipefail; "$@" | head -c 10')  # fmt: skip
    assert len(run.stdout) == 10 and run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
