"""The private key, from whatever the user gave: contents pasted into a secret, or a file's path.

Accepted contents: Apple's .p8 (PEM PKCS#8), SEC1 (``BEGIN EC PRIVATE KEY``), literal ``\\n``
escapes, CRLF, newlines collapsed to spaces, surrounding whitespace or quotes, and base64 of any of
those (or of DER). Anything else is one :class:`PrivateKeyError` subclass (the class is the reason)
that names the setting and never quotes the key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import select
import stat
import time
from typing import IO, TYPE_CHECKING, List, Optional, Tuple

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from .errors import (
    InputError,
    KeyEncryptedError,
    KeyFileUnreadableError,
    KeyMissingError,
    KeyTruncatedError,
    NotAKeyError,
    PublicKeyGivenError,
    WrongKeyTypeError,
)
from .redact import may_be_secret_path, shown

if TYPE_CHECKING:
    from .records import KeySource

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)(?:-----END ([A-Z0-9 ]+)-----|$)", re.DOTALL)
_APPLE_HINT = (
    "Use the AuthKey_<KEYID>.p8 file downloaded from App Store Connect > Users and Access > "
    "Integrations > App Store Connect API, pasted whole (BEGIN and END lines included) into the "
    "secret, or base64 of the file (`base64 -i AuthKey_XXXXXXXXXX.p8 | pbcopy` on a Mac)."
)
_MAX_KEY_FILE_BYTES = 64 * 1024
PIPE_SECONDS = 20.0  # how long a pipe named as a file is waited for, when the caller does not say
# DER algorithm identifiers (RFC 8410) of the keys OpenSSL cannot even load at a wrong length.
_EDWARDS_OIDS = {
    b"\x06\x03\x2b\x65\x6e": "X25519",
    b"\x06\x03\x2b\x65\x6f": "X448",
    b"\x06\x03\x2b\x65\x70": "Ed25519",
    b"\x06\x03\x2b\x65\x71": "Ed448",
}


def read_private_key(
    source: KeySource, workspace: Optional[str], *, wait: float = PIPE_SECONDS
) -> ec.EllipticCurvePrivateKey:
    """The EC P-256 key the user gave, or one :class:`PrivateKeyError` naming the setting; a pipe named
    as its file (``--private-key-path <(...)``) is waited for ``wait`` seconds at most."""
    path, label = source.path, source.label
    if path is None:
        return load_private_key(source.contents or "", input_label=label)
    # Relative paths are relative to the workspace, where actions/checkout put the repository.
    expanded = os.path.expanduser(path)
    full = expanded if os.path.isabs(expanded) else os.path.join(workspace or os.getcwd(), expanded)
    try:
        raw = read_file(full, _MAX_KEY_FILE_BYTES, wait)
    except TimeoutError:
        raise KeyFileUnreadableError(
            f"{label} names a pipe that gave no data within {wait:.0f} s (its writer never came): give the path "
            "of the AuthKey_<KEYID>.p8 file."
        ) from None
    except OSError as exc:
        if may_be_secret_path(path):
            # The key pasted into the path setting: the path itself is the secret.
            raise KeyFileUnreadableError(
                f"{label} holds what looks like the key itself, not a path (not shown): put the "
                f"key's contents in {source.contents_label} instead, and leave {label} unset.",
                details=_APPLE_HINT,
            ) from None
        if isinstance(exc, FileNotFoundError):
            message = (
                f"{label} file {shown(path, path=True)} does not exist (looked in {os.path.dirname(full) or '.'}): "
                f"check the path{' (a relative one starts at the workspace)' if workspace else ''} and that an "
                "earlier step wrote the file."
            )
        elif isinstance(exc, IsADirectoryError):
            message = f"{label} points at a folder, not the .p8 file: give the file's path."
        else:  # ENAMETOOLONG and friends: the value is not quoted, it may be a secret in the wrong place.
            message = (
                f"{label} cannot be opened as a file ({exc.strerror or type(exc).__name__}; the value "
                "is not shown): set it to the path of the AuthKey_<KEYID>.p8 file."
            )
        raise KeyFileUnreadableError(message) from None
    if not raw.strip():
        raise KeyFileUnreadableError(
            f"The file that {label} names ({shown(path, path=True)}) is empty: check that the step that wrote it "
            "had the secret (an empty secret writes an empty file)."
        )
    return load_private_key(raw.decode("utf-8", errors="replace"), input_label=f"the file {label} names")


def read_file(name: str, limit: int, wait: float) -> bytes:
    """A file's first ``limit`` bytes; a pipe (``--input <(...)``, a FIFO) is read for at most ``wait``
    seconds, else TimeoutError: opening a FIFO whose writer never comes would block forever."""
    if not hasattr(os, "O_NONBLOCK") or not stat.S_ISFIFO(os.stat(name).st_mode):
        with open(name, "rb") as stream:
            return stream.read(limit)
    descriptor = os.open(name, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO blocks without it
    try:
        deadline, chunks, size = time.monotonic() + wait, [], 0
        while size < limit:
            ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
            chunk = os.read(descriptor, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def read_argument_file(
    name: str, stdin: IO[bytes], limit: int, wait: float, *, where: str, wanted: Tuple[str, str]
) -> bytes:
    """A command's file argument (``-``: stdin) as :func:`read_file` reads it; each failure an :class:`InputError`
    opening with ``where`` and saying what to give instead: ``wanted`` is (what file, what else, such as stdin)."""
    try:
        return stdin.read(limit) if name == "-" else read_file(name, limit, wait)
    except TimeoutError:
        raise InputError(
            f"{where} gave no data within {wait:.0f} s: a pipe whose writer never came; give a file."
        ) from None
    except FileNotFoundError:
        raise InputError(f"{where} does not exist: give the path of {wanted[0]}, or {wanted[1]}.") from None
    except IsADirectoryError:
        raise InputError(f"{where} is a folder: give the path of {wanted[0]}.") from None
    except OSError as exc:
        raise InputError(
            f"{where} cannot be read ({exc.strerror or type(exc).__name__}): give a readable file."
        ) from None


def load_private_key(text: str, *, input_label: str) -> ec.EllipticCurvePrivateKey:
    """Parse ``text`` into an EC P-256 private key or raise :class:`PrivateKeyError`."""
    cleaned = _unwrap(text)
    if not cleaned:
        raise KeyMissingError(
            f"{input_label} is empty: set it to the contents of your AuthKey_<KEYID>.p8 file.",
            details=(
                "An empty value usually means the secret does not exist here, is spelled "
                "differently, or this run is a pull request from a fork (GitHub passes empty "
                "secrets to those).\n" + _APPLE_HINT
            ),
        )
    return _load_pem(cleaned, input_label) if "-----BEGIN" in cleaned else _load_base64(cleaned, input_label)


def to_pkcs8_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """The normalised form Apple's tools read: PEM PKCS#8, like the .p8 download."""
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")


def secret_forms(key: ec.EllipticCurvePrivateKey, given: Optional[str] = None) -> List[str]:
    """Every form of the key that could reach a log, for masking, longest first.

    The PKCS#8 and SEC1 bodies (line by line and joined), and the value as the user gave it:
    its lines, its ``\\n``-escaped single line, its base64 wrapper.
    """
    forms = set()
    for private_format in (PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(Encoding.PEM, private_format, NoEncryption()).decode()
        body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        forms.update(body)
        forms.add("".join(body))
    stripped = (given or "").strip()
    if stripped:
        for line in [*stripped.splitlines(), *_unwrap(stripped).splitlines()]:
            line = line.strip().strip("\"'")
            if len(line) >= 16 and (not line.startswith("-----") or "\\n" in line):
                forms.add(line)
        if "-----BEGIN" not in stripped:
            forms.add("".join(stripped.split()))  # base64 of the file, wrapped or not
    return sorted(forms, key=len, reverse=True)


def _unwrap(text: str) -> str:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    # Secrets copied from JSON or .env files carry literal escapes instead of newlines.
    value = value.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _load_base64(value: str, input_label: str) -> ec.EllipticCurvePrivateKey:
    """The key ``value`` is base64 of: of a PEM file, or of DER."""
    compact = "".join(value.split())
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        pem = raw.decode("ascii") if b"-----BEGIN" in raw else ""
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise _garbage(input_label) from None
    if pem:
        return _load_pem(_unwrap(pem), input_label)
    if raw[:1] == b"\x30" and len(raw) > 64:
        return _load_der(raw, input_label)
    raise _garbage(input_label)


def _load_pem(text: str, input_label: str) -> ec.EllipticCurvePrivateKey:
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise _garbage(input_label)
    label, body, end_label = match.group(1).strip(), match.group(2), match.group(3)
    if "ENCRYPTED" in label or "Proc-Type: 4,ENCRYPTED" in body:
        raise _encrypted(input_label)
    if label in ("PUBLIC KEY", "EC PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE"):
        raise PublicKeyGivenError(
            f"{input_label} holds a {label.lower()}, not a private key: use the contents of the "
            "AuthKey_<KEYID>.p8 file.",
            details=_APPLE_HINT,
        )
    if end_label is None:
        raise _truncated(input_label, "it has no -----END ...----- line")
    body_lines = [line for line in body.strip().split("\n") if ":" not in line]
    compact = "".join("".join(body_lines).split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _truncated(input_label, "its base64 body is incomplete or damaged") from None
    return _load_der(der, input_label, pem_label=label)


def _load_der(der: bytes, input_label: str, pem_label: str = "") -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_der_private_key(der, password=None)
    except TypeError:
        raise _encrypted(input_label) from None
    except (ValueError, UnsupportedAlgorithm, InternalError):
        # OpenSSL reports an Ed448/X448 (or Ed25519/X25519) key of the wrong length as an
        # InternalError: the algorithm identifier still says which kind of key it was meant to be.
        if pem_label == "RSA PRIVATE KEY":
            raise _wrong_type(input_label, "an RSA key") from None
        edwards = next((name for oid, name in _EDWARDS_OIDS.items() if oid in der[:32]), None)
        if edwards is not None:
            raise _wrong_type(input_label, f"an {edwards} key") from None
        raise _truncated(input_label, "its contents do not parse as a private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return key
        raise _wrong_type(input_label, f"an EC key on curve {key.curve.name}")
    if isinstance(key, rsa.RSAPrivateKey):
        raise _wrong_type(input_label, f"an RSA {key.key_size}-bit key")
    kind = type(key).__name__.lstrip("_").replace("PrivateKey", "")
    raise _wrong_type(input_label, f"{'an' if kind[:1] in 'AEIOUX' else 'a'} {kind} key")


def _wrong_type(input_label: str, found: str) -> WrongKeyTypeError:
    return WrongKeyTypeError(
        f"{input_label} is {found}, but App Store Connect keys are EC P-256 (ES256): "
        "use the AuthKey_<KEYID>.p8 file from App Store Connect.",
        details=(
            "App Store Connect API keys are always elliptic-curve P-256 keys. An RSA or other key "
            "is probably a signing certificate's key or a key for another service.\n" + _APPLE_HINT
        ),
    )


def _encrypted(input_label: str) -> KeyEncryptedError:
    return KeyEncryptedError(
        f"{input_label} is an encrypted (password-protected) key: store the unencrypted "
        "AuthKey_<KEYID>.p8 file exactly as Apple issued it.",
        details=(
            "Apple issues .p8 keys unencrypted. If you encrypted it, decrypt it once with "
            "`openssl pkcs8 -in encrypted.p8 -out AuthKey_XXXXXXXXXX.p8 -nocrypt` on your machine "
            "and store the result as the secret; CI secrets are already encrypted at rest."
        ),
    )


def _truncated(input_label: str, why: str) -> KeyTruncatedError:
    return KeyTruncatedError(
        f"{input_label} looks truncated or damaged ({why}): paste the whole AuthKey_<KEYID>.p8 "
        "file, from -----BEGIN PRIVATE KEY----- through -----END PRIVATE KEY-----.",
        details=_APPLE_HINT,
    )


def _garbage(input_label: str) -> NotAKeyError:
    return NotAKeyError(
        f"{input_label} is not a private key (no PEM block and not base64 of one): set it to "
        "the contents of your AuthKey_<KEYID>.p8 file.",
        details=("A common cause is putting the key ID, issuer ID or file name into the key secret. " + _APPLE_HINT),
    )
