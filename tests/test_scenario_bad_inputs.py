"""Each mistake in the secrets gets one ::error:: naming the input and the fix, exit 1, no leak.

In process; the failure-table rows of docs/troubleshooting.md (empty secret, RSA key, truncated key, missing issuer)
also run through the runner. The CLI's refusals run in process too, streams read at the file descriptors. The reasons themselves are tabled in test_keys and test_settings."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Dict, List

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from asc_token.errors import WrongKeyTypeError
from asc_token.keys import load_private_key
from asc_token.report import markdown_own
from asc_token.transport import Reply, Transport
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import (
    IN_PROCESS,
    PROCESS,
    QUICK_RETRIES,
    FixedToken,
    KeyMaterial,
    Mode,
    OnFds,
    assert_no_secrets,
    detection_env,
    invoke,
    one_error,
    settings,
)


def _pem(private_key: object, encryption: object = None) -> str:
    return private_key.private_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    ).decode()


def _expect_error(
    tmp_path: Path,
    inputs: Dict[str, str],
    must_say: List[str],
    secrets: List[str],
    mode: Mode = IN_PROCESS,
) -> str:
    result = invoke("action", tmp_path, inputs, mode=mode)
    assert result.returncode == 2, result.log
    message = one_error(result)
    for phrase in must_say:
        assert phrase.lower() in message.lower(), message
    assert "token" not in result.outputs
    assert not any(line.startswith("::add-mask::ey") for line in result.stdout.splitlines())
    assert_no_secrets(result, secrets)
    assert markdown_own(message) in result.summary  # the same explanation reaches the job summary
    return message


def test_empty_key(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(tmp_path, settings(key, private_key="  \n"), ["`private-key`", "AuthKey_<KEYID>.p8"], [], PROCESS)


def test_both_key_and_path(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(
        tmp_path,
        settings(key, private_key_path="AuthKey.p8"),
        ["Both", "`private-key-path`", "keep one"],
        key.secret_fragments(),
    )


def test_neither_key_nor_path(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(tmp_path, settings(key, private_key=""), ["No private key", "`private-key-path`"], [])


def test_missing_file(tmp_path: Path, key: KeyMaterial) -> None:
    inputs = settings(key, private_key="", private_key_path="nope/AuthKey_ABCDE12345.p8")
    _expect_error(
        tmp_path, inputs, ["`private-key-path`", "does not exist", "a relative one starts at the workspace"], []
    )


def test_garbage(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(
        tmp_path,
        settings(key, private_key="hello, I am not a key!"),
        ["`private-key`", "not a private key"],
        ["hello, I am not a key"],
    )


def test_truncated_pem(tmp_path: Path, key: KeyMaterial) -> None:
    truncated = key.pem[: len(key.pem) // 2]
    _expect_error(
        tmp_path,
        settings(key, private_key=truncated),
        ["`private-key`", "truncated"],
        key.secret_fragments(),
        PROCESS,
    )


def test_damaged_body(tmp_path: Path, key: KeyMaterial) -> None:
    lines = key.pem.splitlines()
    damaged = "\n".join([lines[0], lines[1][:20], lines[-1]])
    _expect_error(
        tmp_path,
        settings(key, private_key=damaged),
        ["`private-key`", "truncated or damaged"],
        key.secret_fragments(),
    )


def test_rsa_key(tmp_path: Path, key: KeyMaterial) -> None:
    rsa_pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _expect_error(
        tmp_path,
        settings(key, private_key=rsa_pem),
        ["`private-key`", "RSA", "P-256"],
        rsa_pem.splitlines()[1:-1],
        PROCESS,
    )


def test_p384_key(tmp_path: Path, key: KeyMaterial) -> None:
    p384 = _pem(ec.generate_private_key(ec.SECP384R1()))
    _expect_error(
        tmp_path, settings(key, private_key=p384), ["`private-key`", "secp384r1", "P-256"], p384.splitlines()[1:-1]
    )


def test_encrypted_key(tmp_path: Path, key: KeyMaterial) -> None:
    encrypted = _pem(key.key, serialization.BestAvailableEncryption(b"hunter2"))
    _expect_error(
        tmp_path, settings(key, private_key=encrypted), ["`private-key`", "encrypted"], encrypted.splitlines()[1:-1]
    )


@pytest.mark.parametrize("bad", ["ABC", "abcde12345", "ABCDE-1234", "ABCDE123456"])
def test_key_id_shape(tmp_path: Path, key: KeyMaterial, bad: str) -> None:
    _expect_error(tmp_path, settings(key, key_id=bad), ["`key-id`", "10 characters"], key.secret_fragments())


def test_team_key_with_empty_issuer(tmp_path: Path, key: KeyMaterial) -> None:
    message = _expect_error(
        tmp_path, settings(key, issuer_id=""), ["`issuer-id`", "individual"], key.secret_fragments(), PROCESS
    )
    result_summary = (tmp_path / "summary.md").read_text()
    assert "forks" in result_summary  # the fork-PR explanation is in the details
    assert "key-type" in message


def test_issuer_not_a_uuid(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(tmp_path, settings(key, issuer_id="my-team"), ["`issuer-id`", "UUID"], key.secret_fragments())


def test_key_type(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(
        tmp_path, settings(key, key_type="admin"), ["`key-type`", "team or individual"], key.secret_fragments()
    )


@pytest.mark.parametrize("bad", ["0", "1201", "20M", "20 m", "-5", "1.5", "²"])
def test_expires_in(tmp_path: Path, key: KeyMaterial, bad: str) -> None:
    _expect_error(tmp_path, settings(key, expires_in=bad), ["`expires-in`", "1 to 1200"], key.secret_fragments())


def test_shell_metacharacters_stay_data(tmp_path: Path, key: KeyMaterial) -> None:
    marker = tmp_path / "pwned"
    evil = f'$(touch {marker})`touch {marker}`"; touch {marker}; echo "'
    _expect_error(tmp_path, settings(key, key_id=evil), ["`key-id`"], key.secret_fragments())
    assert not marker.exists()


def test_a_key_pasted_into_the_wrong_input_is_not_echoed(tmp_path: Path, key: KeyMaterial) -> None:
    message = _expect_error(
        tmp_path, settings(key, expires_in=key.pem), ["`expires-in`", "not shown"], key.secret_fragments()
    )
    assert "BEGIN" not in message


# --- no "Internal error" from any input ---------------------------------------------------


# --- no "Internal error" from any input ---------------------------------------------------


@pytest.mark.parametrize("value", ["²", "9" * 5000, "١٢٠"])
def test_expires_in_that_is_not_ascii_digits(tmp_path: Path, key: KeyMaterial, value: str) -> None:
    result = invoke("action", tmp_path, settings(key, expires_in=value))
    assert result.returncode == 2
    assert "`expires-in` must be" in one_error(result)


def test_retry_after_that_is_not_ascii_digits(api: AppStoreConnectStandIn, key: KeyMaterial) -> None:
    transport = Transport(policy=QUICK_RETRIES)
    for value in ("²", "9" * 5000, "-1", "1e9", ""):
        assert transport._retry_after(Reply(429, {"retry-after": value}, b"")) is None
    assert transport._retry_after(Reply(429, {"retry-after": "3600"}, b"")) == QUICK_RETRIES.retry_after_cap
    api.inject(
        Fault("apple-error", status=429, code="RATE_LIMIT_EXCEEDED", headers=(("Retry-After", "²"),)),
        Fault("apple-error", status=404, code="NOT_FOUND"),
    )
    reply = transport.send("GET", api.url + "/v1/apps?limit=1", FixedToken("not checked"))
    assert (reply.status, reply.attempts) == (404, 2)  # retried after its own backoff, then answered


def _okp_pkcs8_pem(oid: bytes, length: int) -> str:
    """A PKCS#8 Ed448/X448 key whose private key has the wrong length (OpenSSL: InternalError)."""

    def tlv(tag: int, content: bytes) -> bytes:
        return bytes([tag, len(content)]) + content

    der = tlv(0x30, tlv(0x02, b"\x00") + tlv(0x30, oid) + tlv(0x04, tlv(0x04, b"\x01" * length)))
    return "-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(("name", "oid"), [("Ed448", b"\x06\x03\x2b\x65\x71"), ("X448", b"\x06\x03\x2b\x65\x6f")])
@pytest.mark.parametrize("length", [1, 32, 100])
def test_edwards_key_of_wrong_length(name: str, oid: bytes, length: int) -> None:
    with pytest.raises(WrongKeyTypeError, match=f"is an {name} key"):
        load_private_key(_okp_pkcs8_pem(oid, length), input_label="`private-key`")


def test_edwards_key_through_the_action(tmp_path: Path, key: KeyMaterial) -> None:
    pem = _okp_pkcs8_pem(b"\x06\x03\x2b\x65\x71", 32)
    result = invoke("action", tmp_path, settings(key, private_key=pem))
    assert result.returncode == 2
    assert "`private-key` is an Ed448 key" in one_error(result)


def test_output_file_is_a_folder(tmp_path: Path, key: KeyMaterial, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "folder").mkdir()
    args = ["--no-verify", "--output-file", str(tmp_path / "folder")]
    run = invoke("asc-token", tmp_path, settings(key, verify=None), args, mode=OnFds(capfd))
    assert run.returncode == 2 and run.stdout == ""  # refused before the token is even minted
    assert "exists and is not a regular file" in run.stderr and "--output-file" in run.stderr
    assert "Internal error" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(("platform", "tool"), [("buildkite", "buildkite-agent"), ("bitrise", "envman")])
def test_platform_tool_is_missing(
    tmp_path: Path, key: KeyMaterial, platform: str, tool: str, capfd: pytest.CaptureFixture[str]
) -> None:
    named, env = settings(key, verify=None), detection_env(platform, tmp_path)
    run = invoke("asc-token", tmp_path, named, ["--no-verify"], mode=OnFds(capfd), env=env, tools=False)
    assert run.returncode == 1 and run.stdout == ""
    assert f"{tool} was not found on PATH" in run.stderr
    assert "Internal error" not in run.stderr and "Traceback" not in run.stderr
