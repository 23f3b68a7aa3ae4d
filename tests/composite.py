"""Run a composite action (action.yml, upload/action.yml) as the runner does: inputs with defaults, env
mapping, bash in the workspace, GITHUB_ACTION_PATH the action's own folder."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from devtools.runnerfiles import parse_file_command

from .runner import ROOT, Run, scrubbed_env

_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def run_composite(
    workdir: Path,
    with_inputs: Dict[str, str],
    *,
    tool_cache: Path,
    path_prefix: Optional[Path] = None,
    path: Optional[str] = None,
    extra_env: Optional[Dict[str, str]] = None,
    timeout: float = 300,
    action_file: str = "action.yml",
) -> Run:
    """The run: its exit code, its log (each step's stdout then stderr, as ``stdout``), outputs,
    env_file (GITHUB_ENV), path_file (GITHUB_PATH's lines) and summary. ``action_file``: which action,
    relative to the repository (``upload/action.yml``)."""
    action_path = (ROOT / action_file).parent
    action = yaml.safe_load((ROOT / action_file).read_text())
    assert action["runs"]["using"] == "composite"
    unknown = set(with_inputs) - set(action["inputs"])
    assert not unknown, f"not inputs of {action_file}: {unknown}"
    required = {name for name, spec in action["inputs"].items() if spec.get("required")}
    assert required <= set(with_inputs), f"required inputs of {action_file} not given: {required - set(with_inputs)}"
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update(with_inputs)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "temp").mkdir(exist_ok=True)
    (workdir / "workspace").mkdir(exist_ok=True)
    for name in ("env.txt", "path.txt"):
        (workdir / name).write_text("")
    step_outputs: Dict[str, Dict[str, str]] = {}
    logs = []
    returncode = 0
    for index, step in enumerate(action["runs"]["steps"]):
        context = {"inputs": inputs, "steps": step_outputs, "github": {"action_path": str(action_path)}}
        output_file = workdir / f"output-{index}.txt"
        output_file.write_text("")
        summary_file = workdir / "summary.md"
        summary_file.touch()
        env = scrubbed_env()
        if path is not None:
            env["PATH"] = path
        if path_prefix is not None:
            env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
        env.update(extra_env or {})
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_ACTION_PATH=str(action_path),
            GITHUB_OUTPUT=str(output_file),
            GITHUB_ENV=str(workdir / "env.txt"),
            GITHUB_PATH=str(workdir / "path.txt"),
            GITHUB_STEP_SUMMARY=str(summary_file),
            GITHUB_WORKSPACE=str(workdir / "workspace"),
            RUNNER_TEMP=str(workdir / "temp"),
            RUNNER_TOOL_CACHE=str(tool_cache),
        )
        # The runner evaluates expressions in env: values; the script text must contain none of inputs.
        assert "inputs." not in step["run"], "inputs pasted into a run: script are shell injection"
        for name, value in (step.get("env") or {}).items():
            env[name] = _evaluate(str(value), context)
        script = workdir / f"step-{index}.sh"
        script.write_text(step["run"])
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            env=env,
            cwd=str(workdir / "workspace"),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        logs.append(completed.stdout + completed.stderr)
        step_outputs[step.get("id", f"step{index}")] = {"outputs": parse_file_command(output_file.read_text())}  # type: ignore[dict-item]
        if completed.returncode != 0:
            returncode = completed.returncode
            break
    context = {"inputs": inputs, "steps": step_outputs}
    outputs = {name: _evaluate(spec["value"], context) for name, spec in action["outputs"].items()}
    return Run(
        returncode,
        "".join(logs),
        "",
        workdir,
        outputs=outputs,
        env_file=parse_file_command((workdir / "env.txt").read_text()),
        path_file=(workdir / "path.txt").read_text().splitlines(),
        summary=(workdir / "summary.md").read_text(),
    )


def _evaluate(text: str, context: Dict[str, object]) -> str:
    def lookup(match: re.Match[str]) -> str:
        value: object = context
        for part in match.group(1).split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return str(value)

    return _EXPRESSION.sub(lookup, text)


def find_python(version: str) -> Optional[Path]:
    """A working interpreter of ``version`` ("3.9"): ``python3.9`` on PATH, or one of pyenv's.

    pyenv's shims run only the selected versions, so its other versions are looked up by hand.
    The real executable is returned, never a shim (a shim renamed python3 would run another one).
    """
    candidates: List[str] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False, timeout=60).stdout.strip()
        if root:
            candidates += sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")))
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        lines = probe.stdout.splitlines()
        if probe.returncode == 0 and len(lines) == 2 and lines[0] == version and Path(lines[1]).is_file():
            return Path(lines[1])
    return None
