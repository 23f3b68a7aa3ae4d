"""Text from a server, a proxy or a links.next is shown as text: no links, no reordering, no commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asc_token.explain import Asked, explain_reply, explain_unreachable
from asc_token.github import GitHubInputs
from asc_token.redact import quote_foreign
from asc_token.report import markdown_text
from asc_token.transport import Reply
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import ISSUER_ID, KEY_ID, KeyMaterial, run_action_in_process

SPOOFS = ["\u202e", "\u202d", "\u2066", "\u2069", "\u200f", "\u061c", "\u009b", "\u0085", "\u2028"]


def action_inputs(key: KeyMaterial, api: AppStoreConnectStandIn) -> dict:  # type: ignore[type-arg]
    return {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "api-url": api.url}


def test_a_url_in_an_error_code_is_not_a_link_in_the_summary(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("apple-error", status=403, code="SEE_https://evil.example/login", detail="or www.evil.example"))
    result = run_action_in_process(tmp_path, action_inputs(key, api))
    assert result.returncode == 1
    outside_code = re.sub(r"(?ms)^(`{3,})\n.*?^\1$", "", result.summary)  # no links inside a fence
    assert "https://evil.example" not in outside_code and "www.evil.example" not in outside_code
    assert "evil.example/login" in outside_code  # still shown, as text


@pytest.mark.parametrize("char", SPOOFS)
def test_bidi_and_c1_controls_never_reach_log_or_summary(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, char: str
) -> None:
    api.inject(Fault("apple-error", status=403, code=f"FORBIDDEN{char}exe.txt", title=f"t{char}", detail=f"d{char}"))
    result = run_action_in_process(tmp_path, action_inputs(key, api))
    assert result.returncode == 1
    assert char not in result.stdout + result.stderr + result.summary


@pytest.mark.parametrize("char", SPOOFS)
def test_the_request_url_is_cleaned_where_it_is_shown(char: str) -> None:
    """A URL can come from a server's links.next: the explanations clean it as foreign text."""
    url = f"https://api.appstoreconnect.apple.com/v1/apps?cursor=a{char}b"
    asked = Asked(url, "team")
    proxy_page = Reply(502, {"content-type": "text/html"}, b"<title>gateway</title>")
    shown = [
        explain_reply(proxy_page, asked, GitHubInputs({}), lambda: 0.0),
        explain_unreachable("reset", asked, GitHubInputs({})),
    ]
    for error in shown:
        assert char not in error.message + error.details


@pytest.mark.parametrize("char", SPOOFS)
def test_quote_foreign_and_markdown_text_drop_spoofing_characters(char: str) -> None:
    assert char not in quote_foreign(f"a{char}b") and char not in markdown_text(f"a{char}b")


@pytest.mark.parametrize(
    "body", [b'{"errors": []}', b'{"data": null}', b"{}", b'{"data": [], "errors": [{"code": "X"}]}']
)
def test_a_200_without_resources_is_not_a_verification(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, body: bytes
) -> None:
    api.inject(Fault("raw-json", status=200, detail=body.decode()))
    result = run_action_in_process(tmp_path, action_inputs(key, api))
    assert result.returncode == 1, result.stdout
    assert "token" not in result.outputs and "verified" not in result.summary.lower().replace("not verified", "")
