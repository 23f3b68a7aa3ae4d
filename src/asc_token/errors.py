"""One exception root for every failure a user can act on; the class is the reason.

``message`` is the one sentence for the error annotation: what is wrong, naming the setting as
the user spells it, and the fix. ``details`` is the longer explanation printed under it and put
in the job summary. Neither ever contains key material or a token.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

# One exit status table for the action, `asc-token` and `asc-token api`.
EXIT_OK = 0
EXIT_FAILED = 1  # refused, unreachable, or failed after minting (a delivery that could not be written)
EXIT_USAGE = 2  # a bad setting or argument, found before any request
EXIT_INTERNAL = 3  # a bug: no traceback, no secret
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + the signal's number, as a shell reports it
EXIT_TERMINATED = 143  # SIGTERM (a job cancelled, a timeout): the same cleanup as for SIGINT
EXIT_STATUSES = (
    "Exit status: 0 done; 1 refused, unreachable, or failed after minting (explained on stderr); "
    "2 a bad setting or argument, nothing was sent; 3 a bug (please report it)."
)


class AscTokenError(Exception):
    """Anything that stops the action for a reason the user can fix."""

    title = "asc-token-action failed"
    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, details: str = "", title: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if title is not None:
            self.title = title


class InputError(AscTokenError):
    """A setting (action input, flag or environment variable) has an unusable value."""

    title = "Invalid input"
    exit_code = EXIT_USAGE


class PrivateKeyError(InputError):
    """The private key could not be read or is not an App Store Connect (EC P-256) key."""

    title = "Unusable private key"


class KeyMissingError(PrivateKeyError):
    """The key setting is empty (a missing secret, or a pull request from a fork)."""


class KeyFileUnreadableError(PrivateKeyError):
    """The key path names nothing, a folder, an empty file or a file that cannot be read."""


class NotAKeyError(PrivateKeyError):
    """Neither PEM nor base64 of a key: often the key ID or a file name in the key secret."""


class KeyTruncatedError(PrivateKeyError):
    """A PEM block without its END line or with a damaged body."""


class KeyEncryptedError(PrivateKeyError):
    """A password-protected key; Apple issues them unencrypted."""


class PublicKeyGivenError(PrivateKeyError):
    """A public key or certificate where the private key belongs."""


class WrongKeyTypeError(PrivateKeyError):
    """A private key, but not EC P-256 (RSA, P-384, Ed25519, ...)."""


class KeyFilesError(AscTokenError):
    """Writing the key files for Apple's tools failed."""

    title = "Could not write key files"


class DeliveryError(AscTokenError):
    """The token was minted but could not be handed to the CI platform."""

    title = "Could not hand on the token"


class ApiError(AscTokenError):
    """The API (or something in front of it) did not accept the request. explain.py titles
    each answer's error with the service that was asked, the API's or the notary's."""

    title = "The API request failed"  # no service named: explain.py titles what it explains with it


class NotAppleError(ApiError):
    """The answer did not come from the service: a proxy, gateway or captive portal."""


class UnreachableError(ApiError):
    """No usable answer from the service: refused, DNS, TLS, timeout, reset, or a body that could not be decoded."""


class ChecksFailedError(ApiError):
    """One or more checks failed; ``results`` holds every check's row (records.CheckResult) for the summary."""

    def __init__(self, message: str, *, details: str, title: str, results: Sequence[Any]) -> None:
        super().__init__(message, details=details, title=title)
        self.results = tuple(results)


class AppNotFoundError(ApiError):
    """`app:<bundle-id>` matched no app the key can see, or more than one."""

    title = "App not found"


class UploadFailedError(ApiError):
    """App Store Connect refused the upload, could not process it, or it did not finish in time."""

    title = "Upload failed"


class UploadPlanError(AscTokenError):
    """App Store Connect's upload operations cannot be carried out as given: refused before any byte is sent."""

    title = "Unusable upload operations"


class OperationMalformedError(UploadPlanError):
    """An operation lacks a field, has one of the wrong type, a length below 1, or a part number used twice."""


class OperationsGapError(UploadPlanError):
    """Some bytes of the file are in no operation."""


class OperationsOverlapError(UploadPlanError):
    """Two operations send some of the same bytes."""


class OperationPastEndError(UploadPlanError):
    """An operation asks for bytes past the end of the file."""


class OperationDestinationError(UploadPlanError):
    """An operation's URL is not https (plain http only to this machine) or carries credentials."""


class PartUploadError(AscTokenError):
    """A part of the file could not be delivered to the object storage."""

    title = "Upload failed"


class PartRefusedError(PartUploadError):
    """The object storage refused a part with an answer that another attempt would not change (4xx, redirect)."""


class PartServerError(PartUploadError):
    """The object storage answered 5xx or 429 to every attempt at a part."""


class PartUnreachableError(PartUploadError):
    """No answer for a part: refused, DNS, TLS, or resets and timeouts on every attempt."""


class OperationExpiredError(PartUploadError):
    """A part's pre-signed URL expired before it was sent, and no fresh one could be had."""


class PartFileError(PartUploadError):
    """The file could not be read while its parts were sent (changed, shortened, or a disk error)."""


class BuildFileError(InputError):
    """The file given to upload is not a build the Build Uploads API takes (bundles.py)."""

    title = "Unusable build file"


class BuildFileUnreadableError(BuildFileError):
    """The build file names nothing, a folder, or a file that cannot be read."""


class BuildFileEmptyError(BuildFileError):
    """The build file has no bytes (a build or export step that did not finish)."""


class NotABuildFileError(BuildFileError):
    """Neither an .ipa nor a .pkg."""


class NotAZipError(BuildFileError):
    """An .ipa that is not a readable zip archive."""


class NoInfoPlistError(BuildFileError):
    """An .ipa without Payload/<name>.app/Info.plist."""


class SeveralAppsError(BuildFileError):
    """An .ipa whose Payload/ holds more than one app."""


class InfoPlistTooLargeError(BuildFileError):
    """An Info.plist far larger than any app's: a damaged archive or a zip bomb, never read."""


class InfoPlistUnreadableError(BuildFileError):
    """An Info.plist that is neither a binary nor an XML property list of a dictionary."""


class SimulatorBuildError(BuildFileError):
    """A build for a simulator, which App Store Connect never takes."""


class BuildSettingError(InputError):
    """A fact the upload needs is in neither the build file nor its flag, or a flag's value is unusable."""

    title = "Missing build setting"


class PlatformMissingError(BuildSettingError):
    """Neither the file (DTPlatformName, CFBundleSupportedPlatforms) nor --platform names the platform."""


class PlatformUnknownError(BuildSettingError):
    """--platform names no platform the Build Uploads API takes."""


class VersionMissingError(BuildSettingError):
    """No CFBundleShortVersionString in the file and no --version (always so for a .pkg)."""


class BuildNumberMissingError(BuildSettingError):
    """No CFBundleVersion in the file and no --build-number (always so for a .pkg)."""


class BundleIdMissingError(BuildSettingError):
    """No CFBundleIdentifier in the file, no --bundle-id and no --app-id."""
