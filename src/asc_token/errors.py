"""One exception root for every failure a user can act on.

``str(error)`` is the one sentence for the ``::error::`` annotation: what is wrong, naming the
input, and the fix. ``details`` is the longer explanation printed under it and put in the job
summary. Neither ever contains key material or a token.
"""

from __future__ import annotations

from typing import Optional


class AscTokenError(Exception):
    """Anything that stops the action for a reason the user can fix."""

    title = "asc-token-action failed"

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InputError(AscTokenError):
    """An input (action input, flag or environment variable) has an unusable value."""

    title = "Invalid input"

    def __init__(self, input_label: str, message: str, *, details: str = "") -> None:
        super().__init__(message, details=details)
        self.input_label = input_label


class PrivateKeyError(InputError):
    """The private key could not be read or is not an App Store Connect (EC P-256) key."""

    title = "Unusable private key"

    def __init__(self, input_label: str, message: str, *, reason: str, details: str = "") -> None:
        super().__init__(input_label, message, details=details)
        self.reason = reason


class KeyFileError(AscTokenError):
    """Writing the key files for Apple's tools failed."""

    title = "Could not write key files"


class VerificationError(AscTokenError):
    """The token was minted but App Store Connect did not accept the credentials."""

    title = "App Store Connect rejected the request"

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: Optional[int] = None,
        code: Optional[str] = None,
        details: str = "",
    ) -> None:
        super().__init__(message, details=details)
        self.url = url
        self.status = status
        self.code = code


class NetworkError(VerificationError):
    """App Store Connect could not be reached: refused, DNS, timeout or reset."""

    title = "App Store Connect unreachable"

    def __init__(self, message: str, *, url: str, kind: str, details: str = "") -> None:
        super().__init__(message, url=url, details=details)
        self.kind = kind
