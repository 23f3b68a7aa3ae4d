"""Every message the "When it fails" and "Did you mean" tables of docs/troubleshooting.md quote is one a
real run prints.

A quoted message is a code span of more than one word in the right-hand column (single words are
names like `Date`); ``...`` stands for any text on the same line. Each row with a quote has a
scenario here, run through the action in process; a row without one fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.standin import AppStoreConnectStandIn, Fault

from .conftest import OTHER_ISSUER, proxy_wanting_credentials_running
from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, Run, invoke, settings


def failure_table(heading: str = "When it fails") -> List[Tuple[str, List[str]]]:
    """(what is wrong, [quoted messages]) for each row of the table under ``## {heading}``."""
    text = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("|") or len(cells) != 2 or set(cells[1]) <= set("-|"):
            continue
        spans = [match.group(2).strip() for match in re.finditer(r"(`+)(.+?)\1", cells[1])]
        rows.append((cells[0], [span for span in spans if " " in span]))
    return rows[1:]  # the header row


def quoted_pattern(quote: str) -> re.Pattern[str]:
    pieces = [piece.strip() for piece in quote.split("...")]
    return re.compile(".*?".join(re.escape(piece) for piece in pieces if piece))


class Scene:
    """What a scenario may need: a folder, the key, a running stand-in and a refused port."""

    def __init__(self, tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, closed_port: int) -> None:
        self.tmp_path, self.key, self.api, self.closed_port = tmp_path, key, api, closed_port

    def run(self, inputs: Dict[str, str]) -> Run:
        return invoke("action", self.tmp_path, inputs)


def _rsa_key(scene: Scene) -> Run:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return scene.run(settings(scene.key, private_key=pem))


def _server_clock_behind(scene: Scene) -> Run:
    scene.api.clock_offset_seconds = -40 * 60
    return scene.run(settings(scene.key, standin=scene.api))


def _role(scene: Scene) -> Run:
    scene.api.register(KEY_ID, scene.key.key.public_key(), ISSUER_ID, role_allows_apps=False)
    return scene.run(settings(scene.key, standin=scene.api))


def _proxy_page(scene: Scene) -> Run:
    scene.api.inject(*[Fault("html", status=502)] * 10)
    return scene.run(settings(scene.key, standin=scene.api))


def _proxy_wants_credentials(scene: Scene) -> Run:
    with proxy_wanting_credentials_running() as proxy:
        inputs = settings(scene.key, verify=None, api_url="https://api.example.invalid")
        return invoke("action", scene.tmp_path, inputs, env={"HTTPS_PROXY": proxy.url})


SCENARIOS: Dict[str, Callable[[Scene], Run]] = {
    "the secret is empty (or this is a PR from a fork)": lambda s: s.run(settings(s.key, private_key="")),
    "an RSA, P-384 or encrypted key": _rsa_key,
    "the key was cut off when pasted": lambda s: s.run(settings(s.key, private_key=s.key.pem[:100])),
    "`issuer-id` empty for a team key": lambda s: s.run(settings(s.key, issuer_id="")),
    "401 from Apple": lambda s: s.run(settings(s.key, standin=s.api, issuer_id=OTHER_ISSUER)),
    "the runner's clock is off": _server_clock_behind,
    "403": _role,
    "refused, DNS, TLS, timeout": lambda s: s.run(
        settings(s.key, verify=None, api_url=f"http://127.0.0.1:{s.closed_port}")
    ),
    "a proxy or firewall answers instead of Apple": _proxy_page,
    "the proxy in `HTTPS_PROXY` wants credentials (407 to `CONNECT`)": _proxy_wants_credentials,
}
ROWS = failure_table()


def test_every_quoted_row_has_a_scenario() -> None:
    quoted = {what for what, quotes in ROWS if quotes}
    assert len(ROWS) >= 9 and quoted
    assert quoted == set(SCENARIOS), "add a scenario for a new quoted row, or remove the one for a dropped row"


@pytest.mark.parametrize(("what", "quotes"), [row for row in ROWS if row[1]], ids=[what for what, q in ROWS if q])
def test_quoted_message_is_printed(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, closed_port: int, what: str, quotes: List[str]
) -> None:
    result = SCENARIOS[what](Scene(tmp_path, key, api, closed_port))
    setting = any(f"title={title}::" in result.stdout for title in ("Invalid input", "Unusable private key"))
    assert result.returncode == (2 if setting else 1)  # a bad setting, found before any request: 2
    for quote in quotes:
        assert quoted_pattern(quote).search(result.stdout), (
            f"docs/troubleshooting.md quotes {quote!r}; the run printed:\n{result.stdout}"
        )


# What each row of "Did you mean" sets, over a valid team key's inputs.
PASTES: Dict[str, Dict[str, str]] = {
    "`key-id: AuthKey_ABCDE12345.p8` (the file name)": {"key-id": "AuthKey_ABCDE12345.p8"},
    "`key-id: abcde12345`": {"key-id": "abcde12345"},
    '`issuer-id: "{57246542-96fe-1a63-e053-0824d011072a}"`': {"issuer-id": '"{57246542-96fe-1a63-e053-0824d011072a}"'},
    "`private-key: ./AuthKey_ABCDE12345.p8`": {"private-key": "./AuthKey_ABCDE12345.p8"},
}
PASTE_ROWS = failure_table("Did you mean")


def test_every_paste_row_has_a_scenario() -> None:
    assert {what for what, quotes in PASTE_ROWS if quotes} == set(PASTES)


@pytest.mark.parametrize(("what", "quotes"), PASTE_ROWS, ids=[what for what, _ in PASTE_ROWS])
def test_did_you_mean_is_printed(tmp_path: Path, key: KeyMaterial, what: str, quotes: List[str]) -> None:
    result = invoke("action", tmp_path, {**settings(key), **PASTES[what]})
    assert result.returncode == 2
    (error,) = result.errors()
    for quote in quotes:
        assert quoted_pattern(quote).search(error), f"docs/troubleshooting.md quotes {quote!r}; the run printed {error}"
