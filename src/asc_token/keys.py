"""Read an App Store Connect private key in any form people paste into CI secrets.

Accepted: Apple's .p8 (PEM PKCS#8), SEC1 (``BEGIN EC PRIVATE KEY``), literal ``\\n`` escapes,
CRLF, newlines collapsed to spaces, surrounding whitespace or quotes, and base64 of any of those
(or of DER). Anything else is a :class:`PrivateKeyError` that names the input and never quotes
the key.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import PrivateKeyError

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)(?:-----END ([A-Z0-9 ]+)-----|$)", re.DOTALL)
_APPLE_HINT = (
    "Use the AuthKey_<KEYID>.p8 file downloaded from App Store Connect > Users and Access > "
    "Integrations > App Store Connect API, pasted whole (BEGIN and END lines included) into the "
    "secret, or base64 of the file (`base64 -i AuthKey_XXXXXXXXXX.p8 | pbcopy` on a Mac)."
)


def load_private_key(text: str, *, input_label: str) -> ec.EllipticCurvePrivateKey:
    """Parse ``text`` into an EC P-256 private key or raise :class:`PrivateKeyError`."""
    cleaned = _unwrap(text)
    if not cleaned:
        raise PrivateKeyError(
            input_label,
            f"{input_label} is empty: set it to the contents of your AuthKey_<KEYID>.p8 file.",
            reason="empty",
            details=(
                "An empty value usually means the secret does not exist in this repository or "
                "environment, is spelled differently, or this run is a pull request from a fork "
                "(GitHub passes empty secrets to those).\n" + _APPLE_HINT
            ),
        )
    if "-----BEGIN" not in cleaned:
        unwrapped = _decode_base64_wrapper(cleaned, input_label)
        if isinstance(unwrapped, bytes):
            return _check_curve(_load_der(unwrapped, input_label), input_label)
        cleaned = unwrapped
    return _check_curve(_load_pem(cleaned, input_label), input_label)


def to_pkcs8_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """The normalised form Apple's tools read: PEM PKCS#8, like the .p8 download."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def secret_lines(key: ec.EllipticCurvePrivateKey) -> list[str]:
    """Lines of the normalised key worth masking (the base64 body, not BEGIN/END)."""
    return [line for line in to_pkcs8_pem(key).splitlines() if line and not line.startswith("-----")]


def _unwrap(text: str) -> str:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    # Secrets copied from JSON or .env files carry literal escapes instead of newlines.
    value = value.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _decode_base64_wrapper(value: str, input_label: str) -> str | bytes:
    """Return PEM text when ``value`` is base64 of a PEM file, DER bytes when base64 of DER."""
    compact = "".join(value.split())
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _garbage(input_label) from None
    if b"-----BEGIN" in raw:
        try:
            return _unwrap(raw.decode("ascii"))
        except UnicodeDecodeError:
            raise _garbage(input_label) from None
    if raw[:1] == b"\x30" and len(raw) > 64:
        return raw
    raise _garbage(input_label)


def _load_pem(text: str, input_label: str) -> object:
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise _garbage(input_label)
    label, body, end_label = match.group(1).strip(), match.group(2), match.group(3)
    if "ENCRYPTED" in label or "Proc-Type: 4,ENCRYPTED" in body:
        raise _encrypted(input_label)
    if label in ("PUBLIC KEY", "EC PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE"):
        raise PrivateKeyError(
            input_label,
            f"{input_label} holds a {label.lower()}, not a private key: use the contents of the "
            "AuthKey_<KEYID>.p8 file.",
            reason="not-private",
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


def _load_der(der: bytes, input_label: str, pem_label: str = "") -> object:
    try:
        return serialization.load_der_private_key(der, password=None)
    except TypeError:
        raise _encrypted(input_label) from None
    except (ValueError, UnsupportedAlgorithm):
        if pem_label == "RSA PRIVATE KEY":
            raise _wrong_type(input_label, "an RSA key") from None
        raise _truncated(input_label, "its contents do not parse as a private key") from None


def _check_curve(key: object, input_label: str) -> ec.EllipticCurvePrivateKey:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return key
        raise _wrong_type(input_label, f"an EC key on curve {key.curve.name}")
    if isinstance(key, rsa.RSAPrivateKey):
        raise _wrong_type(input_label, f"an RSA {key.key_size}-bit key")
    raise _wrong_type(input_label, f"a {type(key).__name__.lstrip('_')} key")


def _wrong_type(input_label: str, found: str) -> PrivateKeyError:
    return PrivateKeyError(
        input_label,
        f"{input_label} is {found}, but App Store Connect keys are EC P-256 (ES256): "
        "use the AuthKey_<KEYID>.p8 file from App Store Connect.",
        reason="wrong-type",
        details=(
            "App Store Connect API keys are always elliptic-curve P-256 keys. An RSA or other key "
            "is probably a signing certificate's key or a key for another service.\n" + _APPLE_HINT
        ),
    )


def _encrypted(input_label: str) -> PrivateKeyError:
    return PrivateKeyError(
        input_label,
        f"{input_label} is an encrypted (password-protected) key: store the unencrypted "
        "AuthKey_<KEYID>.p8 file exactly as Apple issued it.",
        reason="encrypted",
        details=(
            "Apple issues .p8 keys unencrypted. If you encrypted it, decrypt it once with "
            "`openssl pkcs8 -in encrypted.p8 -out AuthKey_XXXXXXXXXX.p8 -nocrypt` on your machine "
            "and store the result as the secret; CI secrets are already encrypted at rest."
        ),
    )


def _truncated(input_label: str, why: str) -> PrivateKeyError:
    return PrivateKeyError(
        input_label,
        f"{input_label} looks truncated or damaged ({why}): paste the whole AuthKey_<KEYID>.p8 "
        "file, from -----BEGIN PRIVATE KEY----- through -----END PRIVATE KEY-----.",
        reason="truncated",
        details=_APPLE_HINT,
    )


def _garbage(input_label: str) -> PrivateKeyError:
    return PrivateKeyError(
        input_label,
        f"{input_label} is not a private key (no PEM block and not base64 of one): set it to "
        "the contents of your AuthKey_<KEYID>.p8 file.",
        reason="garbage",
        details=("A common cause is putting the key ID, issuer ID or file name into the key secret. " + _APPLE_HINT),
    )
