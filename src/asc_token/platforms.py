"""Each CI platform in one record: how it is detected, where its workspace is, how it masks
secrets, and where a minted token goes so that its later steps can read it.

Tokens reach a platform's tools in a file or on a pipe, never in a subprocess's argv (argv is
visible to every process on the machine). With ``--print`` stdout belongs to the caller's
``$(...)``: nothing but the token is ever written there.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Callable, ClassVar, List, Mapping, Optional, TextIO, Tuple, Type

from .errors import AscTokenError, DeliveryError
from .github import GitHubCommands, append_to_runner_file, check_runner_file, publish
from .inputs import GitHubInputs
from .records import Delivery
from .report import summary_markdown

if TYPE_CHECKING:
    from .records import Outcome, Settings
    from .tokens import Mask

INDIVIDUAL_KEY_FILES = (
    "Individual key: altool takes it with --api-key-subject user and no issuer; Apple does not let "
    "individual keys use notarytool or the provisioning endpoints that xcodebuild "
    "-allowProvisioningUpdates needs (use a team key there); the fastlane JSON has no issuer_id, which "
    "fastlane reads as an individual key."
)


class Platform:
    """The generic CI system: nothing to detect, nowhere special to put the token."""

    name: ClassVar[str] = "generic"
    # Detected when any of these variables has its value, in any case ("": any value at all).
    markers: ClassVar[Tuple[Tuple[str, str], ...]] = ()
    workspace_variables: ClassVar[Tuple[str, ...]] = ()  # where relative key paths start: the first set
    token_file_in_workspace: ClassVar[bool] = False  # .asc-token there, when no --output-file is given

    def __init__(
        self,
        env: Mapping[str, str],
        log: Callable[[str], None],
        stdout: Optional[TextIO] = None,
        stderr: Optional[TextIO] = None,
    ) -> None:
        self.env = env
        self.log = log
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def workspace(self) -> Optional[str]:
        return next((self.env[name] for name in self.workspace_variables if self.env.get(name)), None)

    def token_file(self) -> Optional[str]:
        """Where the token is written (0600) when no --output-file is given."""
        return os.path.join(self.workspace() or os.getcwd(), ".asc-token") if self.token_file_in_workspace else None

    def mask(self, secret: str, *, printing: bool) -> None:
        """Register a secret with the platform's log masking, before it exists anywhere else."""

    def key_mask(self, *, printing: bool) -> Optional[Mask]:
        """How to register the key's forms; None where that would write them to a stream a user can
        capture (a mask command on stderr or stdout): the key itself is never printed."""
        return None

    def check_delivery(self, settings: Settings) -> None:
        """Where :meth:`deliver` will write, checked before anything is sent (an :class:`InputError`)."""

    def key_files_folder(self, settings: Settings) -> Optional[str]:
        """Where Apple's tools will find the key files (RUNNER_TEMP; '' when unset), or None for none."""
        return None

    def report_error(self, error: AscTokenError) -> None:
        self.log(f"error: {error.message}")
        if error.details:
            self.log(error.details)

    def deliver(self, settings: Settings, outcome: Outcome, *, printing: bool) -> List[str]:
        """Hand the token to later steps; returns what was done, for the log."""
        return []


class GitHub(Platform):
    name = "github"
    markers = (("GITHUB_ACTIONS", "true"),)
    workspace_variables = ("GITHUB_WORKSPACE",)

    def _commands(self) -> GitHubCommands:
        # stderr: the runner reads workflow commands there too, and stdout may be $(...).
        return GitHubCommands(self.env, stream=self.stderr)

    def mask(self, secret: str, *, printing: bool) -> None:
        self._commands().mask(secret)

    def check_delivery(self, settings: Settings) -> None:
        check_runner_file(self.env, "GITHUB_OUTPUT")

    def report_error(self, error: AscTokenError) -> None:
        commands = self._commands()
        commands.command("error", error.message, title=error.title)
        if error.details:
            commands.info(error.details)

    def deliver(self, settings: Settings, outcome: Outcome, *, printing: bool) -> List[str]:
        # The action's outputs, nothing exported: a later step's CLI call sets outputs, no summary.
        published = publish(self._commands(), settings.credentials, Delivery(), outcome)
        return ["step output `token` (masked)"] if published else []


class Action(GitHub):
    """The action's own step (``uses:``): workflow commands on its stdout, which only the runner reads;
    outputs, exported variables, key files and the job summary; a failure annotated and summarised."""

    name = "action"

    def __init__(
        self, env: Mapping[str, str], stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None
    ) -> None:
        super().__init__(env, lambda line: self._commands().info(line), stdout, stderr)
        self.inputs = GitHubInputs(env, log=self.log)
        self.settings: Optional[Settings] = None  # what the summary shows, as far as the step got
        self.outcome: Optional[Outcome] = None

    def _commands(self) -> GitHubCommands:
        return GitHubCommands(self.env, stream=self.stdout)

    def key_mask(self, *, printing: bool) -> Optional[Mask]:
        return self._commands().mask  # the step's own stdout, which only the runner reads

    def check_delivery(self, settings: Settings) -> None:
        self.settings = settings
        exported = ("GITHUB_ENV",) if settings.delivery.export_env or settings.delivery.export_token else ()
        for variable in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", *exported):  # before anything is sent
            check_runner_file(self.env, variable)

    def key_files_folder(self, settings: Settings) -> Optional[str]:
        return self.env.get("RUNNER_TEMP", "") if settings.delivery.write_key_files else None

    def deliver(self, settings: Settings, outcome: Outcome, *, printing: bool) -> List[str]:
        self.outcome, commands, credentials = outcome, self._commands(), settings.credentials
        published = publish(commands, credentials, settings.delivery, outcome)
        if outcome.key_files is not None and credentials.key_type == "individual":
            commands.command("notice", INDIVIDUAL_KEY_FILES, title="Individual key files")
        commands.append_summary(summary_markdown(settings, outcome, None, self.inputs))
        if not published:
            commands.command(
                "warning",
                "GITHUB_OUTPUT is not set, so the token output cannot be passed on; is this running outside "
                "GitHub Actions?",
            )
        return ["step outputs"] if published else []

    def report_error(self, error: AscTokenError) -> None:
        super().report_error(error)
        with contextlib.suppress(AscTokenError):  # the summary file may be what failed
            self._commands().append_summary(summary_markdown(self.settings, self.outcome, error, self.inputs))


class Azure(Platform):
    name = "azure"
    markers = (("TF_BUILD", "true"),)
    workspace_variables = ("BUILD_SOURCESDIRECTORY", "SYSTEM_DEFAULTWORKINGDIRECTORY")

    def mask(self, secret: str, *, printing: bool) -> None:
        if printing:
            return  # stdout is the caller's; the token is never logged by this program
        self.stdout.writelines(f"##vso[task.setsecret]{line.strip()}\n" for line in secret.splitlines() if line.strip())
        self.stdout.flush()

    def report_error(self, error: AscTokenError) -> None:
        # Azure shows logging-command errors in the run summary; the message is ours, one line.
        message = " ".join(error.message.split()).replace("]", ")")
        self.log(f"##[error]{message}")
        if error.details:
            self.log(error.details)

    def deliver(self, settings: Settings, outcome: Outcome, *, printing: bool) -> List[str]:
        if printing:
            return []  # stdout is the caller's; a logging command there would pollute $(...)
        minted = outcome.minted
        self.stdout.write(f"##vso[task.setvariable variable=ASC_TOKEN;issecret=true]{minted.token}\n")
        self.stdout.write(f"##vso[task.setvariable variable=ASC_TOKEN_EXPIRES_AT]{minted.expires_at_iso}\n")
        self.stdout.flush()
        return ["secret pipeline variable ASC_TOKEN (use $(ASC_TOKEN), or map it into env:)"]


class CircleCI(Platform):
    name = "circleci"
    markers = (("CIRCLECI", "true"),)
    workspace_variables = ("CIRCLE_WORKING_DIRECTORY",)

    def check_delivery(self, settings: Settings) -> None:
        check_runner_file(self.env, "BASH_ENV", "CircleCI", each="job")

    def deliver(self, settings: Settings, outcome: Outcome, *, printing: bool) -> List[str]:
        bash_env = self.env.get("BASH_ENV")
        if not bash_env:
            self.log("CircleCI: BASH_ENV is not set, so ASC_TOKEN cannot be exported to later steps.")
            return []
        minted = outcome.minted
        exports = f"export ASC_TOKEN='{minted.token}'\nexport ASC_TOKEN_EXPIRES_AT='{minted.expires_at_iso}'\n"
        append_to_runner_file(self.env, "BASH_ENV", exports, newline=None)
        return ["ASC_TOKEN exported via $BASH_ENV (CircleCI does not mask it: never echo it)"]


class Bitrise(Platform):
    name = "bitrise"
    markers = (("BITRISE_IO", "true"), ("BITRISE_BUILD_NUMBER", ""))
    workspace_variables = ("BITRISE_SOURCE_DIR",)

    def deliver(self, settings: Settings, outcome: Outcome, *, printing: bool) -> List[str]:
        minted = outcome.minted
        run_with_stdin(["envman", "add", "--key", "ASC_TOKEN", "--sensitive"], minted.token, self.env)
        run_with_stdin(["envman", "add", "--key", "ASC_TOKEN_EXPIRES_AT"], minted.expires_at_iso, self.env)
        return ["sensitive env var ASC_TOKEN (envman --sensitive)"]


class Buildkite(Platform):
    name = "buildkite"
    markers = (("BUILDKITE", "true"),)
    workspace_variables = ("BUILDKITE_BUILD_CHECKOUT_PATH",)
    token_file_in_workspace = True

    def mask(self, secret: str, *, printing: bool) -> None:
        # Before the first request: a server echoing the Authorization header must meet a redactor.
        run_with_stdin(["buildkite-agent", "redactor", "add"], secret + "\n", self.env)

    def key_mask(self, *, printing: bool) -> Optional[Mask]:
        return lambda secret: self.mask(secret, printing=printing)  # a pipe to the agent, not a log


class GitLab(Platform):
    name = "gitlab"
    markers = (("GITLAB_CI", "true"),)
    workspace_variables = ("CI_PROJECT_DIR",)

    def deliver(self, settings: Settings, outcome: Outcome, *, printing: bool) -> List[str]:
        self.log(
            "GitLab CI: use TOKEN=$(asc-token --print) or --output-file in the job that calls the API. "
            "Do not pass the token on as a dotenv artifact: GitLab does not mask dotenv variables."
        )
        return []


class Woodpecker(Platform):
    name = "woodpecker"
    markers: ClassVar[Tuple[Tuple[str, str], ...]] = (("CI", "woodpecker"), ("CI_SYSTEM_NAME", "woodpecker"))
    workspace_variables = ("CI_WORKSPACE",)
    token_file_in_workspace = True

    def token_file(self) -> Optional[str]:
        return self.env.get("PLUGIN_OUTPUT_FILE") or super().token_file()


class Drone(Woodpecker):
    name = "drone"
    markers = (("DRONE", "true"),)
    workspace_variables = ("DRONE_WORKSPACE",)


class Jenkins(Platform):
    name = "jenkins"
    markers = (("JENKINS_URL", ""), ("JENKINS_HOME", ""))
    workspace_variables = ("WORKSPACE",)


class Bitbucket(Platform):
    name = "bitbucket"
    markers = (("BITBUCKET_BUILD_NUMBER", ""),)
    workspace_variables = ("BITBUCKET_CLONE_DIR",)
    token_file_in_workspace = True


# Detection order matters: some platforms also set another's variables for compatibility.
PLATFORMS = [GitHub, Azure, CircleCI, Bitrise, Buildkite, GitLab, Woodpecker, Drone, Jenkins, Bitbucket]
PLATFORM_NAMES = [platform.name for platform in PLATFORMS] + [Platform.name]


def platform_for(env: Mapping[str, str], name: Optional[str] = None) -> Type[Platform]:
    """The platform called ``name``, or the first detected one (by its ``markers``), or the generic one."""
    for platform in PLATFORMS:
        detected = any(env.get(var) and value in ("", env[var].lower()) for var, value in platform.markers)
        if platform.name == name or (name is None and detected):
            return platform
    return Platform


def run_with_stdin(argv: List[str], secret: str, env: Mapping[str, str]) -> None:
    try:
        completed = subprocess.run(
            argv, input=secret, text=True, env=dict(env), capture_output=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise DeliveryError(
            f"{argv[0]} was not found on PATH, so the token could not be handed on: run this on the "
            "platform's agent, or pass --output-file PATH."
        ) from None
    except subprocess.TimeoutExpired:
        raise DeliveryError(f"{argv[0]} did not finish within 30 s while the token was being handed on.") from None
    if completed.returncode != 0:
        raise DeliveryError(f"{' '.join(argv[:3])} failed with exit code {completed.returncode}.")
