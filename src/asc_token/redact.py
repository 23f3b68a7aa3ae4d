"""What may be a secret, and how text from elsewhere is made safe to show: one policy for all.

:func:`may_be_secret` decides whether a value the user gave (a setting, a path, an argument,
PATH) may be quoted back; :func:`quote_foreign` cleans longer text from a server or the user
before it reaches a log or a summary. Both use the same thresholds: a PEM line is 64 base64
characters, a raw P-256 key 43-44, a SEC1 tail 36; anything of the key's alphabet that long is
never shown.
"""

from __future__ import annotations

import re

LONGEST_QUOTED = 200  # a longer value is described, never quoted: nothing we ask for is that long
_RUN = 40  # a run of base64 or base64url this long is key or token material, wherever it stands
_BARE = 24  # a value that is nothing but base64 and this long is a piece of a key line
_RUN_ANYWHERE = re.compile(rf"[A-Za-z0-9+/=_-]{{{_RUN},}}")
_BARE_BASE64 = re.compile(rf"[A-Za-z0-9+/=]{{{_BARE},}}")
# The parts of an API path: a name of letters alone (a version suffix allowed), such as Apple's
# subscriptionOfferCodeOneTimeUseCodes or gameCenterLeaderboardsV2 (the longest is 47), v1, a numeric ID or
# a UUID. Key material mixes letters with digits or + (letters only: under 1% of 24-character pieces,
# 0.3% of 40), and a whole PEM line (64) is never a name.
_PLAIN_PART = re.compile(
    r"[A-Za-z]{1,60}(?:V[0-9]{1,2})?|v[0-9]{1,2}|[0-9]{1,19}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
)
ARMOUR = ("-----", "\n", "\r", "\\n")  # PEM armour or line breaks, raw or escaped: never a name
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
# Bidirectional overrides and isolates reorder what a reader sees (U+202E makes "exe.txt" read "txt.exe").
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
FOREIGN_LIMIT = 300


def may_be_secret(value: str) -> bool:
    """Whether ``value`` could be (part of) a key or token, put in the wrong setting: never echo it."""
    text = value.strip()
    if len(text) > LONGEST_QUOTED or any(marker in text for marker in ARMOUR):
        return True
    if any(_key_like(run) for run in _RUN_ANYWHERE.findall(text)):
        return True
    # A shorter bare piece of a PEM line, unless it is shaped like a path (a dot, or a leading / or ~).
    bare = _BARE_BASE64.fullmatch(text) is not None and _key_like(text)
    return bare and "." not in text and not text.startswith(("/", "~"))


def _key_like(run: str) -> bool:
    """Whether a run of the key's alphabet is not just an API path's parts (see ``_PLAIN_PART``)."""
    return not all(_PLAIN_PART.fullmatch(part) for part in run.split("/") if part)


def may_be_secret_path(path: str) -> bool:
    """Whether a path holds key material: armour, or a part between slashes that may be a secret."""
    parts = re.split(r"[/\\]", path)
    return any(marker in path for marker in ARMOUR) or any(may_be_secret(part) for part in parts if part)


def shown(value: str, *, path: bool = False) -> str:
    """``value`` quoted back to the user, or only its length when it may be a secret."""
    if len(value) > LONGEST_QUOTED or (may_be_secret_path(value) if path else may_be_secret(value)):
        return f"a {len(value)}-character value (not shown: it may be a secret in the wrong place)"
    # Not quote_foreign: a path's run of letters and slashes is no secret; commands stay broken up.
    return repr(without_controls(value).replace("##", "# #"))


def is_control(char: str) -> bool:
    """C0 and C1 controls, DEL, line and paragraph separators, and bidi controls."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0 or char in "\u2028\u2029" or char in _BIDI


def without_controls(text: str) -> str:
    """The one scrubber: every control character (:func:`is_control`) a space."""
    return "".join(" " if is_control(char) else char for char in text)


def one_line(text: str) -> str:
    """``text`` as one line: controls made spaces, runs of white space one space."""
    return " ".join(without_controls(text).split())


def quote_foreign(text: object, limit: int = FOREIGN_LIMIT) -> str:
    """Server- or user-supplied text made safe to print: one line, bounded, no command syntax.

    GitHub reads ``::command::`` at a line's start and Azure ``##vso[`` anywhere in a line, so line
    breaks and control characters become spaces and both markers are broken up. A server or proxy
    that echoes the request could hand back the bearer token or key material, and not every CI
    platform masks: anything shaped like a JWT or a long base64 run is dropped. Backticks become
    quotes, so that every code span in a message is the program's own (report.markdown_own).
    """
    raw = str(text)[: limit * 4].encode("utf-8", "replace").decode("utf-8")  # lone surrogates: "?"
    cleaned = one_line(raw).replace("::", ": :").replace("##", "# #").replace("`", "'")
    cleaned = _JWT_LIKE.sub("[a token, not shown]", cleaned)
    cleaned = _RUN_ANYWHERE.sub(lambda run: "[not shown]" if _key_like(run.group()) else run.group(), cleaned)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
