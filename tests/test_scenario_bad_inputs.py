"""Each mistake in the secrets gets one ::error:: naming the input and the fix, exit 1, no leak.

In process; the failure-table rows of docs/troubleshooting.md (empty secret, RSA key, truncated key, missing issuer)
also run through the runner. The reasons themselves are tabled in test_keys and test_settings."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from asc_token.report import markdown_own

from .conftest import team_inputs
from .runner import KeyMaterial, Result, assert_no_secrets, run_action_in_process, run_entrypoint


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
    run: Callable[[Path, Dict[str, str]], Result] = run_action_in_process,
) -> str:
    result = run(tmp_path, inputs)
    assert result.returncode == 2, result.log
    errors = result.errors()
    assert len(errors) == 1, result.stdout
    message = errors[0].split("::", 2)[2]
    for phrase in must_say:
        assert phrase.lower() in message.lower(), message
    assert "token" not in result.outputs
    assert not any(line.startswith("::add-mask::ey") for line in result.stdout.splitlines())
    assert_no_secrets(result, secrets)
    assert markdown_own(message) in result.summary  # the same explanation reaches the job summary
    return message


def base(key: KeyMaterial) -> Dict[str, str]:
    return team_inputs(key)


def test_empty_key(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(
        tmp_path, {**base(key), "private-key": "  \n"}, ["`private-key`", "AuthKey_<KEYID>.p8"], [], run_entrypoint
    )


def test_both_key_and_path(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(
        tmp_path,
        {**base(key), "private-key-path": "AuthKey.p8"},
        ["Both", "`private-key-path`", "keep one"],
        key.secret_fragments(),
    )


def test_neither_key_nor_path(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(tmp_path, {**base(key), "private-key": ""}, ["No private key", "`private-key-path`"], [])


def test_missing_file(tmp_path: Path, key: KeyMaterial) -> None:
    inputs = {**base(key), "private-key": "", "private-key-path": "nope/AuthKey_ABCDE12345.p8"}
    _expect_error(tmp_path, inputs, ["`private-key-path`", "does not exist", "relative to the workspace"], [])


def test_garbage(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(
        tmp_path,
        {**base(key), "private-key": "hello, I am not a key!"},
        ["`private-key`", "not a private key"],
        ["hello, I am not a key"],
    )


def test_truncated_pem(tmp_path: Path, key: KeyMaterial) -> None:
    truncated = key.pem[: len(key.pem) // 2]
    _expect_error(
        tmp_path,
        {**base(key), "private-key": truncated},
        ["`private-key`", "truncated"],
        key.secret_fragments(),
        run_entrypoint,
    )


def test_damaged_body(tmp_path: Path, key: KeyMaterial) -> None:
    lines = key.pem.splitlines()
    damaged = "\n".join([lines[0], lines[1][:20], lines[-1]])
    _expect_error(
        tmp_path,
        {**base(key), "private-key": damaged},
        ["`private-key`", "truncated or damaged"],
        key.secret_fragments(),
    )


def test_rsa_key(tmp_path: Path, key: KeyMaterial) -> None:
    rsa_pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _expect_error(
        tmp_path,
        {**base(key), "private-key": rsa_pem},
        ["`private-key`", "RSA", "P-256"],
        rsa_pem.splitlines()[1:-1],
        run_entrypoint,
    )


def test_p384_key(tmp_path: Path, key: KeyMaterial) -> None:
    p384 = _pem(ec.generate_private_key(ec.SECP384R1()))
    _expect_error(
        tmp_path, {**base(key), "private-key": p384}, ["`private-key`", "secp384r1", "P-256"], p384.splitlines()[1:-1]
    )


def test_encrypted_key(tmp_path: Path, key: KeyMaterial) -> None:
    encrypted = _pem(key.key, serialization.BestAvailableEncryption(b"hunter2"))
    _expect_error(
        tmp_path, {**base(key), "private-key": encrypted}, ["`private-key`", "encrypted"], encrypted.splitlines()[1:-1]
    )


@pytest.mark.parametrize("bad", ["ABC", "abcde12345", "ABCDE-1234", "ABCDE123456"])
def test_key_id_shape(tmp_path: Path, key: KeyMaterial, bad: str) -> None:
    _expect_error(tmp_path, {**base(key), "key-id": bad}, ["`key-id`", "10 characters"], key.secret_fragments())


def test_team_key_with_empty_issuer(tmp_path: Path, key: KeyMaterial) -> None:
    message = _expect_error(
        tmp_path, {**base(key), "issuer-id": ""}, ["`issuer-id`", "individual"], key.secret_fragments(), run_entrypoint
    )
    result_summary = (tmp_path / "summary.md").read_text()
    assert "forks" in result_summary  # the fork-PR explanation is in the details
    assert "key-type" in message


def test_issuer_not_a_uuid(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(tmp_path, {**base(key), "issuer-id": "my-team"}, ["`issuer-id`", "UUID"], key.secret_fragments())


def test_key_type(tmp_path: Path, key: KeyMaterial) -> None:
    _expect_error(
        tmp_path, {**base(key), "key-type": "admin"}, ["`key-type`", "team or individual"], key.secret_fragments()
    )


@pytest.mark.parametrize("bad", ["0", "1201", "20M", "20 m", "-5", "1.5", "²"])
def test_expires_in(tmp_path: Path, key: KeyMaterial, bad: str) -> None:
    _expect_error(tmp_path, {**base(key), "expires-in": bad}, ["`expires-in`", "1 to 1200"], key.secret_fragments())


def test_shell_metacharacters_stay_data(tmp_path: Path, key: KeyMaterial) -> None:
    marker = tmp_path / "pwned"
    evil = f'$(touch {marker})`touch {marker}`"; touch {marker}; echo "'
    _expect_error(tmp_path, {**base(key), "key-id": evil}, ["`key-id`"], key.secret_fragments())
    assert not marker.exists()


def test_a_key_pasted_into_the_wrong_input_is_not_echoed(tmp_path: Path, key: KeyMaterial) -> None:
    message = _expect_error(
        tmp_path, {**base(key), "expires-in": key.pem}, ["`expires-in`", "not shown"], key.secret_fragments()
    )
    assert "BEGIN" not in message
