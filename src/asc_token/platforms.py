"""Where a minted token goes on each CI platform, and how each keeps it out of logs.

Each sink receives the token in a file or on a pipe, never in a subprocess's argv (argv is
visible to every process on the machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable, List, Mapping, Optional, TextIO, Tuple

from .errors import AscTokenError
from .files import write_secret_file
from .github import GitHubCommands

# Checked in this order: some platforms also set another's variables for compatibility.
_DETECTORS: List[Tuple[str, Callable[[Mapping[str, str]], bool]]] = [
    ("github", lambda e: e.get("GITHUB_ACTIONS") == "true"),
    ("azure", lambda e: e.get("TF_BUILD", "").lower() == "true"),
    ("circleci", lambda e: e.get("CIRCLECI") == "true"),
    ("bitrise", lambda e: e.get("BITRISE_IO") == "true" or bool(e.get("BITRISE_BUILD_NUMBER"))),
    ("buildkite", lambda e: e.get("BUILDKITE") == "true"),
    ("gitlab", lambda e: e.get("GITLAB_CI") == "true"),
    (
        "woodpecker",
        lambda e: (
            e.get("CI") == "woodpecker" or bool(e.get("CI_PIPELINE_NUMBER") and e.get("CI_SYSTEM_NAME") == "woodpecker")
        ),
    ),
    ("drone", lambda e: e.get("DRONE") == "true"),
    ("jenkins", lambda e: bool(e.get("JENKINS_URL") or e.get("JENKINS_HOME"))),
    ("bitbucket", lambda e: bool(e.get("BITBUCKET_BUILD_NUMBER"))),
]
PLATFORMS = [name for name, _ in _DETECTORS] + ["generic"]


def detect_platform(env: Mapping[str, str]) -> str:
    for name, matches in _DETECTORS:
        if matches(env):
            return name
    return "generic"


def run_with_stdin(argv: List[str], secret: str, env: Mapping[str, str], what: str) -> None:
    try:
        completed = subprocess.run(
            argv, input=secret, text=True, env=dict(env), capture_output=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise AscTokenError(
            f"{argv[0]} was not found on PATH, so the token could not be {what}: run on the platform's agent, or use --output-file."
        ) from None
    except subprocess.TimeoutExpired:
        raise AscTokenError(f"{argv[0]} did not finish within 30 s while the token was being {what}.") from None
    if completed.returncode != 0:
        raise AscTokenError(
            f"{' '.join(argv[:3])} failed with exit code {completed.returncode} while the token was being {what}."
        )


class Delivery:
    """Hands the token to the platform. ``log`` writes to stderr; stdout stays for --print."""

    def __init__(
        self, platform: str, env: Mapping[str, str], log: Callable[[str], None], stdout: TextIO = sys.stdout
    ) -> None:
        self.platform = platform
        self.env = env
        self.log = log
        self.stdout = stdout

    def mask(self, secret: str) -> None:
        """Register a secret before it exists anywhere else, where the platform can."""
        if self.platform == "github":
            GitHubCommands(dict(self.env)).mask(secret)

    def deliver(self, token: str, expires_at: str, *, printing: bool) -> List[str]:
        """Put the token where this platform's later steps read it; returns what was done."""
        done: List[str] = []
        handler = getattr(self, f"_deliver_{self.platform}", None)
        if handler is not None:
            done += handler(token, expires_at, printing)
        return done

    def _deliver_github(self, token: str, expires_at: str, printing: bool) -> List[str]:
        gh = GitHubCommands(dict(self.env))
        if gh.set_output("token", token):
            gh.set_output("expires-at", expires_at)
            return ["step output `token` (masked)"]
        return []

    def _deliver_azure(self, token: str, expires_at: str, printing: bool) -> List[str]:
        if printing:
            return []  # stdout is the caller's; a logging command there would pollute $(...)
        self.stdout.write(f"##vso[task.setvariable variable=ASC_TOKEN;issecret=true]{token}\n")
        self.stdout.write(f"##vso[task.setvariable variable=ASC_TOKEN_EXPIRES_AT]{expires_at}\n")
        self.stdout.flush()
        return ["secret pipeline variable ASC_TOKEN (use $(ASC_TOKEN), or map it into env:)"]

    def _deliver_circleci(self, token: str, expires_at: str, printing: bool) -> List[str]:
        bash_env = self.env.get("BASH_ENV")
        if not bash_env:
            self.log("CircleCI: BASH_ENV is not set, so ASC_TOKEN cannot be exported to later steps.")
            return []
        with open(bash_env, "a", encoding="utf-8") as stream:
            stream.write(f"export ASC_TOKEN='{token}'\nexport ASC_TOKEN_EXPIRES_AT='{expires_at}'\n")
        return ["ASC_TOKEN exported via $BASH_ENV (CircleCI does not mask it: never echo it)"]

    def _deliver_bitrise(self, token: str, expires_at: str, printing: bool) -> List[str]:
        run_with_stdin(
            ["envman", "add", "--key", "ASC_TOKEN", "--sensitive"], token, self.env, "registered with envman"
        )
        run_with_stdin(
            ["envman", "add", "--key", "ASC_TOKEN_EXPIRES_AT"], expires_at, self.env, "registered with envman"
        )
        return ["sensitive env var ASC_TOKEN (envman --sensitive)"]

    def _deliver_buildkite(self, token: str, expires_at: str, printing: bool) -> List[str]:
        run_with_stdin(["buildkite-agent", "redactor", "add"], token + "\n", self.env, "added to the log redactor")
        return ["redacted from the Buildkite log (buildkite-agent redactor add)"]

    def _deliver_gitlab(self, token: str, expires_at: str, printing: bool) -> List[str]:
        self.log(
            "GitLab CI: use TOKEN=$(asc-token --print) or --output-file in the job that calls the API. "
            "Do not pass the token on as a dotenv artifact: GitLab does not mask dotenv variables."
        )
        return []

    def _deliver_woodpecker(self, token: str, expires_at: str, printing: bool) -> List[str]:
        path = self.env.get("PLUGIN_OUTPUT_FILE") or os.path.join(
            self.env.get("CI_WORKSPACE") or self.env.get("DRONE_WORKSPACE") or os.getcwd(), ".asc-token"
        )
        write_secret_file(path, token + "\n")
        return [f"token file {path} (mode 0600)"]

    _deliver_drone = _deliver_woodpecker


def default_output_file(platform: str, env: Mapping[str, str]) -> Optional[str]:
    """Platforms whose later steps cannot receive a variable get the token as a 0600 file."""
    if platform == "buildkite":
        return os.path.join(env.get("BUILDKITE_BUILD_CHECKOUT_PATH") or os.getcwd(), ".asc-token")
    if platform == "bitbucket":
        return os.path.join(env.get("BITBUCKET_CLONE_DIR") or os.getcwd(), ".asc-token")
    return None
