"""``read_settings`` as a table, through a dict-backed reader: each field's valid and invalid values,
and every message names the setting through the reader (never a hard-coded name)."""

from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Tuple, Type

import pytest

from asc_token.apis import APP_STORE_CONNECT
from asc_token.checks import Preflight
from asc_token.errors import InputError, KeyMissingError
from asc_token.records import Credentials, Delivery, KeySource, Settings
from asc_token.settings import read_settings, require_base_url

from .runner import ISSUER_ID, KEY_ID


class DictInputs:
    """An InputReader over a dict; labels are spelled «name» so a message can only have them from here."""

    def __init__(self, values: Dict[str, str], *, on_github: bool = False) -> None:
        self.values = values
        self.on_github = on_github

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def label(self, name: str) -> str:
        return f"«{name}»"

    def assignment(self, name: str, value: str) -> str:
        return f"«{name}={value}»"


BASE = {"private-key": "-----BEGIN PRIVATE KEY-----...", "key-id": KEY_ID, "issuer-id": ISSUER_ID}


def read(values: Mapping[str, Optional[str]], *, on_github: bool = False) -> Settings:
    """BASE with ``values`` by input name (``None`` leaves one out), through the fake reader."""
    merged = dict(BASE)
    for name, value in values.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    reader = DictInputs(merged, on_github=on_github)
    settings = read_settings(reader, delivery=True)
    credentials = settings.credentials
    require_base_url(reader, "api-url", credentials.api_url, credentials.api.url)  # as the commands do before a request
    return settings


def settings(**values: Optional[str]) -> Settings:
    """Like :func:`read`, with Python names: ``key_id=`` for ``key-id``."""
    return read({name.replace("_", "-"): value for name, value in values.items()})


def test_defaults() -> None:
    read = settings()
    assert read.credentials == Credentials(
        key_id=KEY_ID,
        issuer_id=ISSUER_ID,
        key_type="team",
        expires_in=1200,
        scope=(),
        key=KeySource("«private-key»", contents=BASE["private-key"]),
        api_url=APP_STORE_CONNECT.url,
    )
    assert read.preflight == Preflight() and read.delivery == Delivery()


VALID: Dict[str, Tuple[str, str, object]] = {
    # case: (input, raw value, the Settings field's value)
    "key_id_trimmed": ("key-id", f"  {KEY_ID}\n", KEY_ID),
    "issuer_lowercased": ("issuer-id", ISSUER_ID.upper(), ISSUER_ID),
    "key_type_team": ("key-type", "team", "team"),
    "key_type_any_case": ("key-type", " Individual ", "individual"),
    "expires_in_min": ("expires-in", "1", 1),
    "expires_in_max": ("expires-in", "1200", 1200),
    "expires_in_trimmed": ("expires-in", " 300 ", 300),
    "scope_lines": (
        "scope",
        "GET /v1/apps?filter[platform]=IOS\n\n  GET   /v1/builds  \n",
        ("GET /v1/apps?filter[platform]=IOS", "GET /v1/builds"),
    ),
    "verify_false": ("verify", "false", False),
    "verify_no": ("verify", "no", False),
    "verify_zero": ("verify", "0", False),
    "verify_off": ("verify", "OFF".lower(), False),
    "verify_yes": ("verify", "yes", True),
    "verify_TRUE": ("verify", "TRUE", True),
    "api_url_trailing_slash": ("api-url", "https://asc.example.com/", "https://asc.example.com"),
    "api_url_loopback_http": ("api-url", "http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    "api_url_localhost_http": ("api-url", "http://localhost:1", "http://localhost:1"),
    "api_url_ipv6_loopback": ("api-url", "http://[::1]:8", "http://[::1]:8"),
    "export_token": ("export-token", "true", True),
    "write_key_files": ("write-key-files", "on", True),
}
FIELDS = {name: name.replace("-", "_") for name in ("key-id", "issuer-id", "key-type", "expires-in", "scope",
          "verify", "api-url", "export-token", "write-key-files")}  # fmt: skip


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_value(case: str) -> None:
    name, raw, expected = VALID[case]
    read_back = read({name: raw})
    records = (read_back.credentials, read_back.preflight, read_back.delivery)
    assert next(getattr(part, FIELDS[name]) for part in records if hasattr(part, FIELDS[name])) == expected


def test_individual_key_has_no_issuer_even_when_one_is_given() -> None:
    assert settings(key_type="individual").credentials.issuer_id is None
    assert settings(key_type="individual", issuer_id=None).credentials.issuer_id is None


def test_key_path_instead_of_contents() -> None:
    assert settings(private_key=None, private_key_path=" keys/AuthKey.p8 ").credentials.key == KeySource(
        "«private-key-path»", path="keys/AuthKey.p8"
    )


def test_export_env_with_write_key_files() -> None:
    read = settings(write_key_files="true", export_env="true")
    assert read.delivery.write_key_files and read.delivery.export_env


INVALID: Dict[str, Tuple[Dict[str, Optional[str]], Tuple[str, ...]]] = {
    # case: (values, labels the message must name)
    "key_id_empty": ({"key-id": " "}, ("«key-id»",)),
    "key_id_short": ({"key-id": "ABC"}, ("«key-id»",)),
    "key_id_lowercase": ({"key-id": "abcde12345"}, ("«key-id»",)),
    "key_id_hyphen": ({"key-id": "ABCDE-1234"}, ("«key-id»",)),
    "key_id_long": ({"key-id": "ABCDE123456"}, ("«key-id»",)),
    "issuer_empty_for_team": ({"issuer-id": ""}, ("«issuer-id»", "«key-type»")),
    "issuer_not_a_uuid": ({"issuer-id": "my-team"}, ("«issuer-id»",)),
    "issuer_short": ({"issuer-id": ISSUER_ID[:-1]}, ("«issuer-id»",)),
    "key_type": ({"key-type": "admin"}, ("«key-type»",)),
    "expires_in_zero": ({"expires-in": "0"}, ("«expires-in»",)),
    "expires_in_over": ({"expires-in": "1201"}, ("«expires-in»",)),
    "expires_in_unit": ({"expires-in": "20 minutes"}, ("«expires-in»",)),
    "expires_in_negative": ({"expires-in": "-5"}, ("«expires-in»",)),
    "expires_in_fraction": ({"expires-in": "1.5"}, ("«expires-in»",)),
    "expires_in_superscript": ({"expires-in": "²"}, ("«expires-in»",)),
    "expires_in_huge": ({"expires-in": "9" * 5000}, ("«expires-in»",)),
    "scope_lowercase_method": ({"scope": "get /v1/apps"}, ("«scope»",)),
    "scope_relative_path": ({"scope": "GET v1/apps"}, ("«scope»",)),
    "scope_no_path": ({"scope": "GET"}, ("«scope»",)),
    "verify": ({"verify": "maybe"}, ("«verify»",)),
    "write_key_files": ({"write-key-files": "sure"}, ("«write-key-files»",)),
    "export_env_alone": ({"export-env": "true"}, ("«export-env»", "«write-key-files»")),
    "api_url_ftp": ({"api-url": "ftp://asc.example.com"}, ("«api-url»",)),
    "api_url_plain_http": ({"api-url": "http://asc.example.com"}, ("«api-url»",)),
    "api_url_credentials": ({"api-url": "https://user:pw@asc.example.com"}, ("«api-url»",)),
    "api_url_query": ({"api-url": "https://asc.example.com/?q=1"}, ("«api-url»",)),
    "api_url_fragment": ({"api-url": "https://asc.example.com#top"}, ("«api-url»",)),
    "api_url_space": ({"api-url": "https://asc. example.com"}, ("«api-url»",)),
    "api_url_bad_port": ({"api-url": "https://asc.example.com:99999"}, ("«api-url»",)),
    "api_url_no_host": ({"api-url": "https://"}, ("«api-url»",)),
    "both_key_and_path": ({"private-key-path": "AuthKey.p8"}, ("«private-key»", "«private-key-path»")),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_value_names_the_setting(case: str) -> None:
    values, labels = INVALID[case]
    with pytest.raises(InputError) as raised:
        read(values)
    for label in labels:
        assert label in raised.value.message
    assert "`" not in raised.value.message  # no label but the reader's


def test_no_key_at_all_is_a_missing_key() -> None:
    with pytest.raises(InputError) as raised:
        settings(private_key="  \n")
    assert type(raised.value) is KeyMissingError
    assert "«private-key»" in raised.value.message and "«private-key-path»" in raised.value.message


GITHUB_YAML = re.compile(r"with:|\$\{\{")
HELP_CASES: Dict[str, Tuple[Dict[str, Optional[str]], Type[InputError]]] = {
    "no_key": ({"private-key": ""}, KeyMissingError),
    "no_issuer": ({"issuer-id": ""}, InputError),
}


@pytest.mark.parametrize("case", sorted(HELP_CASES))
def test_workflow_yaml_only_where_the_user_writes_a_workflow(case: str) -> None:
    values, reason = HELP_CASES[case]
    shown = {}
    for on_github in (True, False):
        with pytest.raises(reason) as raised:
            read(values, on_github=on_github)
        shown[on_github] = raised.value.message + raised.value.details
    assert GITHUB_YAML.search(shown[True])
    assert not GITHUB_YAML.search(shown[False])


@pytest.mark.parametrize("name", ["expires-in", "key-type", "verify", "scope", "api-url"])
def test_a_key_in_the_wrong_setting_is_not_echoed(name: str) -> None:
    pem_body = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg" + "A" * 40
    for value in (f"-----BEGIN PRIVATE KEY-----\n{pem_body}\n-----END PRIVATE KEY-----", pem_body, pem_body[:44]):
        with pytest.raises(InputError) as raised:
            read({name: value})
        assert pem_body[:24] not in raised.value.message + raised.value.details


# --- did you mean: the common pastes get the exact fix ------------------------------------------

DID_YOU_MEAN: Dict[str, Tuple[Dict[str, Optional[str]], str]] = {
    "key_file_name": (
        {"key-id": f"AuthKey_{KEY_ID}.p8"},
        f"holds the key's file name, not its Key ID: use «key-id={KEY_ID}»",
    ),
    "key_file_path": ({"key-id": f"/Users/me/Downloads/AuthKey_{KEY_ID.lower()}.p8"}, f"use «key-id={KEY_ID}»"),
    "key_id_lowercase": ({"key-id": KEY_ID.lower()}, f"(it has lowercase letters): use «key-id={KEY_ID}» (uppercase)"),
    "key_id_quoted": ({"key-id": f'"{KEY_ID}"'}, f"(it has quotes or braces): use «key-id={KEY_ID}» (without them)"),
    "issuer_in_braces": ({"issuer-id": f"{{{ISSUER_ID.upper()}}}"}, f"use «issuer-id={ISSUER_ID}» (without the quotes"),
    "issuer_quoted": ({"issuer-id": f"'{ISSUER_ID}'"}, f"«issuer-id» must be a bare UUID: use «issuer-id={ISSUER_ID}»"),
    "issuer_quoted_braces": ({"issuer-id": f'"{{{ISSUER_ID}}}"'}, f"use «issuer-id={ISSUER_ID}»"),
    "key_path_in_contents": (
        {"private-key": "./AuthKey_X.p8"},
        "«private-key» holds a file path, not the key's contents: set «private-key-path=./AuthKey_X.p8» instead",
    ),
    "key_home_path_quoted": ({"private-key": '"~/keys/key.p8"'}, "set «private-key-path=~/keys/key.p8» instead"),
    "key_absolute_path": ({"private-key": "/secrets/asc"}, "set «private-key-path=/secrets/asc» instead"),
}


@pytest.mark.parametrize("case", sorted(DID_YOU_MEAN))
def test_did_you_mean_names_the_exact_fix(case: str) -> None:
    values, fix = DID_YOU_MEAN[case]
    with pytest.raises(InputError) as raised:
        read(values)
    assert fix in raised.value.message
    assert "`" not in raised.value.message  # no label but the reader's


@pytest.mark.parametrize(
    "contents",
    [
        "/" + "A" * 64,  # a PEM line that happens to start with a slash: key material, not a path
        "-----BEGIN PRIVATE KEY-----\\n/etc/AuthKey.p8\\n-----END PRIVATE KEY-----",
        "MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg/some/where.p8",
    ],
)
def test_key_material_is_never_taken_for_a_path(contents: str) -> None:
    """Only a value that cannot be key material is quoted back as a path; a key is parsed as a key."""
    settings = read({"private-key": contents})
    assert settings.credentials.key.contents == contents and settings.credentials.key.path is None
