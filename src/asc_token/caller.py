"""One command's collaborators, built once where it starts and passed on as one value: the credentials,
how the user names settings, the bearer tokens, the transport, the clock and the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

from .tokens import Clock, TokenSource, open_key

if TYPE_CHECKING:
    from .platforms import Platform
    from .records import Credentials, GivenBearer, Naming
    from .transport import Transport
    from .world import Io


@dataclass(frozen=True)
class Caller:
    credentials: Credentials
    naming: Naming
    tokens: Union[TokenSource, GivenBearer]  # signed with the key, or ASC_TOKEN as given (asc-token api)
    transport: Transport
    clock: Clock
    log: Callable[[str], None]


def open_caller(
    credentials: Credentials, naming: Naming, io: Io, platform: Platform, *, printing: bool, keep_first: bool = False
) -> Caller:
    """The key read (its forms masked where the platform can), tokens masked before first use, and one
    connection for every request of the command (``io.policy`` its retries). ``keep_first``: every
    request carries the token handed on (the token command verifies the very token it outputs)."""
    transport = io.transport(platform.log, credentials.api.service)
    if credentials.key.given is not None:  # no key, only a token (ASC_TOKEN): every request carries it as it is
        platform.mask(credentials.key.given.token, printing=printing)
        return Caller(credentials, naming, credentials.key.given, transport, io.clock, platform.log)
    mask_key = platform.key_mask(printing=printing)
    key = open_key(credentials.key, platform.workspace(), mask_key, wait=io.policy.read_timeout)
    mask = lambda secret: platform.mask(secret, printing=printing)  # noqa: E731
    tokens = TokenSource(key, credentials.token_request(), io.clock, mask, keep_first=keep_first)
    return Caller(credentials, naming, tokens, transport, io.clock, platform.log)
