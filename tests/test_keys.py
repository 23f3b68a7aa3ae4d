"""Key loading as a table: every form people paste is accepted, every refusal is its own error class
(the reason), names the setting as given, and never repeats the key."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Callable, Dict, List, Tuple, Type

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from asc_token.errors import (
    KeyEncryptedError,
    KeyFileUnreadableError,
    KeyMissingError,
    KeyTruncatedError,
    NotAKeyError,
    PrivateKeyError,
    PublicKeyGivenError,
    WrongKeyTypeError,
)
from asc_token.keys import load_private_key, read_private_key, to_pkcs8_pem
from asc_token.records import KeySource

from .runner import KEY_ID, KeyMaterial

LABEL = "«the key setting»"  # whatever the reader calls it; messages must use it as given


def _pem(private_key: object, private_format: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    return private_key.private_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()


def _der(key: ec.EllipticCurvePrivateKey, private_format: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, private_format, serialization.NoEncryption())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


P8, SEC1 = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL

ACCEPTED: Dict[str, Callable[[KeyMaterial], str]] = {
    "pkcs8_pem": lambda k: k.pem,
    "sec1_pem": lambda k: k.sec1,
    "escaped_newlines": lambda k: k.pem.replace("\n", "\\n"),
    "escaped_crlf": lambda k: k.pem.replace("\n", "\\r\\n"),
    "crlf": lambda k: k.pem.replace("\n", "\r\n"),
    "bare_cr": lambda k: k.pem.replace("\n", "\r"),
    "surrounding_whitespace": lambda k: "\n\n   " + k.pem + "  \n\t",
    "newlines_collapsed_to_spaces": lambda k: k.pem.replace("\n", " "),
    "double_quoted_escaped": lambda k: '"' + k.pem.replace("\n", "\\n") + '"',
    "single_quoted": lambda k: "'" + k.pem + "'",
    "base64_of_pkcs8_pem": lambda k: k.base64_of_file,
    "base64_of_sec1_pem": lambda k: _b64(k.sec1.encode()),
    "base64_of_pem_wrapped_at_76": lambda k: "\n".join(
        k.base64_of_file[i : i + 76] for i in range(0, len(k.base64_of_file), 76)
    ),
    "base64_of_pem_without_padding": lambda k: k.base64_of_file.rstrip("="),
    "base64_of_pkcs8_der": lambda k: _b64(_der(k.key, P8)),
    "base64_of_sec1_der": lambda k: _b64(_der(k.key, SEC1)),
}


@pytest.mark.parametrize("form", sorted(ACCEPTED))
def test_accepted_form_gives_the_same_key(key: KeyMaterial, form: str) -> None:
    loaded = load_private_key(ACCEPTED[form](key), input_label=LABEL)
    assert loaded.private_numbers() == key.key.private_numbers()
    assert to_pkcs8_pem(loaded) == key.pem  # what key files get, whatever the form


@pytest.fixture(scope="module")
def others() -> Dict[str, object]:
    """Keys that are not App Store Connect keys, made once (RSA generation is the slow part)."""
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "secp256k1": ec.generate_private_key(ec.SECP256K1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


def _certificate(key: KeyMaterial) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not a key")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key.key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _damaged_body(key: KeyMaterial) -> str:
    lines = key.pem.splitlines()
    return "\n".join([lines[0], lines[1][:20], lines[-1]])


Refusal = Callable[[KeyMaterial, Dict[str, object]], str]
REFUSED: Dict[str, Tuple[Type[PrivateKeyError], Refusal]] = {
    "empty": (KeyMissingError, lambda k, o: ""),
    "whitespace": (KeyMissingError, lambda k, o: "  \n\t "),
    "empty_quotes": (KeyMissingError, lambda k, o: '""'),
    "only_escaped_newlines": (KeyMissingError, lambda k, o: "\\n\\n"),
    "prose": (NotAKeyError, lambda k, o: "hello, I am not a key!"),
    "the_key_id": (NotAKeyError, lambda k, o: KEY_ID),
    "the_file_name": (NotAKeyError, lambda k, o: f"AuthKey_{KEY_ID}.p8"),
    "the_issuer_id": (NotAKeyError, lambda k, o: "57246542-96fe-1a63-e053-0824d011072a"),
    "base64_of_prose": (NotAKeyError, lambda k, o: _b64(b"just some text, not a PEM file at all")),
    "pem_without_end": (KeyTruncatedError, lambda k, o: k.pem[: len(k.pem) // 2]),
    "pem_with_damaged_body": (KeyTruncatedError, lambda k, o: _damaged_body(k)),
    "pem_with_junk_body": (
        KeyTruncatedError,
        lambda k, o: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ),
    "base64_of_truncated_der": (KeyTruncatedError, lambda k, o: _b64(_der(k.key, P8)[:100])),
    "encrypted_pkcs8": (
        KeyEncryptedError,
        lambda k, o: k.key.private_bytes(
            serialization.Encoding.PEM, P8, serialization.BestAvailableEncryption(b"hunter2")
        ).decode(),
    ),
    "encrypted_sec1": (
        KeyEncryptedError,
        lambda k, o: k.key.private_bytes(
            serialization.Encoding.PEM, SEC1, serialization.BestAvailableEncryption(b"hunter2")
        ).decode(),
    ),
    "base64_of_encrypted_der": (
        KeyEncryptedError,
        lambda k, o: _b64(
            k.key.private_bytes(serialization.Encoding.DER, P8, serialization.BestAvailableEncryption(b"hunter2"))
        ),
    ),
    "public_key": (
        PublicKeyGivenError,
        lambda k, o: (
            k.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        ),
    ),
    "certificate": (PublicKeyGivenError, lambda k, o: _certificate(k)),
    "rsa_pkcs8": (WrongKeyTypeError, lambda k, o: _pem(o["rsa"])),
    "rsa_traditional": (WrongKeyTypeError, lambda k, o: _pem(o["rsa"], SEC1)),
    "p384": (WrongKeyTypeError, lambda k, o: _pem(o["p384"])),
    "secp256k1": (WrongKeyTypeError, lambda k, o: _pem(o["secp256k1"])),
    "ed25519": (WrongKeyTypeError, lambda k, o: _pem(o["ed25519"])),
    "base64_of_rsa_file": (WrongKeyTypeError, lambda k, o: _b64(_pem(o["rsa"]).encode())),
}


def _never_repeated(error: PrivateKeyError, given: str, key: KeyMaterial) -> None:
    shown = error.message + "\n" + error.details
    body = [line for line in given.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    for fragment in [*key.secret_fragments(), *body]:
        assert fragment not in shown, "the message repeats key material"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusal_reason_is_the_class(key: KeyMaterial, others: Dict[str, object], case: str) -> None:
    reason, make = REFUSED[case]
    given = make(key, others)
    with pytest.raises(PrivateKeyError) as raised:
        load_private_key(given, input_label=LABEL)
    assert type(raised.value) is reason
    assert LABEL in raised.value.message
    _never_repeated(raised.value, given, key)


def test_wrong_key_types_say_what_they_are(others: Dict[str, object]) -> None:
    """The one place the wording matters: the user needs to know what they pasted."""
    found: List[str] = []
    for name in ("rsa", "p384", "ed25519"):
        with pytest.raises(WrongKeyTypeError) as raised:
            load_private_key(_pem(others[name]), input_label=LABEL)
        found.append(raised.value.message)
    assert "RSA 2048-bit" in found[0] and "secp384r1" in found[1] and "Ed25519" in found[2]


# Key files: relative to the workspace; each way a path can be wrong is KeyFileUnreadableError.


def test_relative_path_is_read_from_the_workspace(tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "AuthKey.p8").write_text(key.sec1)
    loaded = read_private_key(KeySource(LABEL, path="keys/AuthKey.p8"), str(tmp_path))
    assert loaded.private_numbers() == key.key.private_numbers()


def test_absolute_path_ignores_the_workspace(tmp_path: Path, key: KeyMaterial) -> None:
    path = tmp_path / "AuthKey.p8"
    path.write_text(key.base64_of_file)
    loaded = read_private_key(KeySource(LABEL, path=str(path)), "/nonexistent-workspace")
    assert loaded.private_numbers() == key.key.private_numbers()


UNREADABLE: Dict[str, Callable[[Path, KeyMaterial], str]] = {
    "missing_file": lambda folder, k: "nope/AuthKey_ABCDE12345.p8",
    "folder": lambda folder, k: str(folder),
    "empty_file": lambda folder, k: _write(folder / "empty.p8", ""),
    "blank_file": lambda folder, k: _write(folder / "blank.p8", "\n  \n"),
    "key_pasted_as_path": lambda folder, k: k.pem,
    "name_too_long": lambda folder, k: "x" * 5000,
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_key_file(tmp_path: Path, key: KeyMaterial, case: str) -> None:
    path = UNREADABLE[case](tmp_path, key)
    with pytest.raises(PrivateKeyError) as raised:
        read_private_key(KeySource(LABEL, path=path), str(tmp_path))
    assert type(raised.value) is KeyFileUnreadableError
    assert LABEL in raised.value.message
    _never_repeated(raised.value, "", key)  # a path is quoted back; key material never
    assert "x" * 200 not in raised.value.message


def test_a_file_that_is_not_a_key_names_the_file_setting(tmp_path: Path, key: KeyMaterial) -> None:
    path = _write(tmp_path / "AuthKey.p8", "hello")
    with pytest.raises(NotAKeyError) as raised:
        read_private_key(KeySource(LABEL, path=path), None)
    assert f"the file {LABEL} names" in raised.value.message


def test_an_empty_key_file_is_named_as_such(tmp_path: Path) -> None:
    """Issue 14: not "`private-key-path` is empty: set it to the contents ...", but the file and its path."""
    path = _write(tmp_path / "AuthKey_ABCDE12345.p8", "")
    with pytest.raises(KeyFileUnreadableError) as raised:
        read_private_key(KeySource(LABEL, path=path), None)
    message = raised.value.message
    assert message.startswith(f"The file that {LABEL} names") and repr(path) in message and "is empty" in message
    assert "set it to the contents" not in message
