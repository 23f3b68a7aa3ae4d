"""What each answer means for the user: ``explain_reply`` over a table of replies, for the action's
naming and the CLI's, and ``explain_unreachable`` for each kind of network failure."""

from __future__ import annotations

import email.utils
import json
import re
from typing import Any, Dict, List, Optional

import pytest

from asc_token.errors import ApiError, NotAppleError, UnreachableError
from asc_token.explain import Asked, apple_said, error_code, explain_api_reply, explain_reply, explain_unreachable
from asc_token.inputs import CliInputs, GitHubInputs
from asc_token.messages import STATUS_PAGE
from asc_token.records import Naming
from asc_token.redact import quote_foreign
from asc_token.transport import Reply

NOW = 1_800_000_000.0
URL = "https://api.appstoreconnect.apple.com/v1/apps?limit=1"
AGREEMENTS = "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED"

ACTION: Naming = GitHubInputs({})
CLI: Naming = CliInputs({}, {})
NAMINGS = {"action": ACTION, "cli": CLI}


def apple(status: int, code: str, *, date: Optional[float] = NOW, attempts: int = 1, **headers: str) -> Reply:
    body = {"errors": [{"status": str(status), "code": code, "title": "A title.", "detail": "A detail."}]}
    if date is not None:
        headers["date"] = email.utils.formatdate(date, usegmt=True)
    return Reply(status, {"content-type": "application/json", **headers}, json.dumps(body).encode(), attempts)


def html(status: int, title: str, attempts: int = 1) -> Reply:
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>proxy</body></html>"
    return Reply(status, {"content-type": "text/html; charset=utf-8"}, page.encode(), attempts)


def explain(reply: Reply, naming: Naming = ACTION, key_type: str = "team", purpose: str = "list apps") -> ApiError:
    asked = Asked(URL, key_type, purpose=purpose, attempts=reply.attempts, key_id="ABCDE12345")
    return explain_reply(reply, asked, naming, lambda: NOW)


def causes(error: ApiError) -> List[str]:
    return re.findall(r"^\d+\. (.*)$", error.details, re.MULTILINE)


# Which class, and which words carry the reason.
CASES: Dict[str, Any] = {
    "401": (apple(401, "NOT_AUTHORIZED"), ApiError, ["401 NOT_AUTHORIZED", "issuer-id"]),
    "401_retried": (apple(401, "NOT_AUTHORIZED", attempts=3), ApiError, ["3 times, each with a freshly signed token"]),
    "401_server_40_min_behind": (apple(401, "NOT_AUTHORIZED", date=NOW - 2400), ApiError, ["40 min ahead of"]),
    "401_server_3_h_ahead": (apple(401, "NOT_AUTHORIZED", date=NOW + 3 * 3600), ApiError, ["3 h behind"]),
    "403_role": (apple(403, "FORBIDDEN_ERROR"), ApiError, ["403 FORBIDDEN_ERROR", "role", "may not list apps"]),
    "403_agreements": (apple(403, AGREEMENTS), ApiError, ["Account Holder", "agreement"]),
    "403_agreements_sub_code": (apple(403, AGREEMENTS + ".PAID"), ApiError, ["Account Holder"]),
    "429": (apple(429, "RATE_LIMIT_EXCEEDED", attempts=2), ApiError, ["429 RATE_LIMIT_EXCEEDED", "quota"]),
    "503": (apple(503, "UNEXPECTED_ERROR", attempts=5), ApiError, ["503 after 5 attempts", STATUS_PAGE]),
    "500": (apple(500, "UNEXPECTED_ERROR"), ApiError, ["500", "not your credentials"]),
    "404": (apple(404, "NOT_FOUND"), ApiError, ["404 NOT_FOUND", URL]),
    "302": (Reply(302, {"location": "https://portal.example/login"}, b""), NotAppleError, ["redirect (302)"]),
    "html_502": (html(502, "502 Bad Gateway", attempts=5), NotAppleError, ['"502 Bad Gateway"', "text/html"]),
    "html_401_from_a_proxy": (html(401, "Sign in"), NotAppleError, ["401", '"Sign in"']),
    "json_not_apples": (Reply(503, {"content-type": "application/json"}, b'{"message": "no"}'), NotAppleError, ["503"]),
    "truncated_body": (Reply(500, {}, b'{"errors": [', truncated=True), NotAppleError, ["500", "+ bytes"]),
}


@pytest.mark.parametrize("naming", sorted(NAMINGS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_reason(case: str, naming: str) -> None:
    reply, reason, says = CASES[case]
    error = explain(reply, NAMINGS[naming])
    assert type(error) is reason
    for words in says:
        if naming == "cli":
            words = words.replace("issuer-id", "--issuer-id")
        assert words in error.message, error.message


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_messages_show_no_workflow_yaml_and_no_refused_flag(case: str) -> None:
    error = explain(CASES[case][0], CLI)
    shown = error.message + "\n" + error.details
    assert not re.search(r"with:|\$\{\{|`[a-z-]+: ", shown)
    assert not re.search(r"--private-key(?!-path)", shown)


@pytest.mark.parametrize("case", sorted(CASES))
def test_action_messages_name_inputs_as_a_workflow_does(case: str) -> None:
    error = explain(CASES[case][0], ACTION)
    shown = error.message + "\n" + error.details
    assert not re.search(r"--[a-z]", shown)  # no flags in the action
    assert "ASC_" not in shown


def test_401_team_key_causes_in_order() -> None:
    error = explain(apple(401, "NOT_AUTHORIZED"))
    # The key by its ID (validated, so shown as is), the setting by its name.
    assert "most often `issuer-id` is not the issuer of key ABCDE12345 " in error.message
    listed = causes(error)
    order = ["`issuer-id` is not the issuer", "`key-id` does not match", "revoked", "an individual key", "clock"]
    assert [next(i for i, cause in enumerate(listed) if words in cause) for words in order] == [0, 1, 2, 3, 4]
    assert "`key-type: individual`" in listed[3]


def test_401_individual_key_does_not_blame_the_issuer() -> None:
    error = explain(apple(401, "NOT_AUTHORIZED"), key_type="individual")
    listed = causes(error)
    assert "issuer" not in error.message
    assert "`key-id` does not match" in listed[0]
    assert not any("is not the issuer" in cause for cause in listed)
    assert "this is a team key but `key-type` is individual" in listed[1]
    assert not any("an individual key" in cause for cause in listed)


@pytest.mark.parametrize("key_type", ["team", "individual"])
@pytest.mark.parametrize("naming", sorted(NAMINGS))
def test_articles_are_right(key_type: str, naming: str) -> None:
    error = explain(apple(401, "NOT_AUTHORIZED"), NAMINGS[naming], key_type)
    shown = error.message + error.details
    assert not re.search(r"\ba individual\b|\ban team\b", shown)


def test_401_with_a_clock_in_step_says_so_and_keeps_the_causes() -> None:
    error = explain(apple(401, "NOT_AUTHORIZED", date=NOW - 30))
    assert "clock" not in error.message
    assert "(measured: within 30 s, so unlikely)" in causes(error)[-1]


def test_401_without_a_date_header_lists_the_clock_unmeasured() -> None:
    error = explain(apple(401, "NOT_AUTHORIZED", date=None))
    assert causes(error)[-1] == "the runner's clock is off"


def test_403_names_what_the_job_needs() -> None:
    error = explain(apple(403, "FORBIDDEN_ERROR"), purpose="read builds")
    assert "may not read builds" in error.message
    assert "`verify: false`" in error.message
    assert "--no-verify" in explain(apple(403, "FORBIDDEN_ERROR"), CLI).message


def test_agreements_are_not_a_key_problem() -> None:
    error = explain(apple(403, AGREEMENTS))
    assert "role" not in error.message and "no change to the key" in error.message


def test_a_proxy_page_is_not_blamed_on_apple() -> None:
    error = explain(html(502, "502 Bad Gateway", attempts=5))
    assert re.match(r"something between the runner and .* answered 502", error.message, re.IGNORECASE)
    assert STATUS_PAGE not in error.message + error.details
    assert "<html>" not in error.message + error.details and "proxy</body>" not in error.message


def test_server_text_cannot_become_a_workflow_command() -> None:
    hostile = "::error::pwned\n##vso[task.setvariable variable=X]1"
    body = {"errors": [{"code": "NOT_AUTHORIZED", "title": hostile, "detail": hostile}]}
    reply = Reply(401, {"content-type": "application/json"}, json.dumps(body).encode())
    redirect = Reply(301, {"location": hostile}, b"")
    for error in (explain(reply), explain(redirect)):
        for line in (error.message + "\n" + error.details).splitlines():
            assert not line.startswith("::") and "##vso[" not in line


UNREACHABLE: Dict[str, str] = {
    "refused": "the connection was refused",
    "dns": "the host name could not be resolved (DNS)",
    "tls": "the TLS handshake failed",
    "timeout": "the request timed out",
    "reset": "the connection was reset",
    "proxy-auth": "the proxy in HTTPS_PROXY answered 407 Proxy Authentication Required",
}


@pytest.mark.parametrize("naming", sorted(NAMINGS))
@pytest.mark.parametrize("kind", sorted(UNREACHABLE))
def test_unreachable(kind: str, naming: str) -> None:
    error = explain_unreachable(kind, Asked(URL, "team"), NAMINGS[naming], attempts=2)
    assert isinstance(error, UnreachableError)
    assert error.message.startswith(f"Could not reach App Store Connect at {URL}: {UNREACHABLE[kind]} (2 attempts)")
    skip = "--no-verify" if naming == "cli" else "`verify: false`"
    assert skip in error.details


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", "plain"),
        ("two\nlines\r\n", "two lines"),
        ("::error::x", ": :error: :x"),
        ("##vso[task.complete]", "# #vso[task.complete]"),
        ("a\u2028b\x00c", "a b c"),
    ],
)
def test_quote_foreign(text: str, quoted: str) -> None:
    assert quote_foreign(text) == quoted


def test_quote_foreign_is_bounded() -> None:
    assert len(quote_foreign("word " * 10_000, limit=50)) == 50


def test_quote_foreign_drops_an_echoed_token_or_key() -> None:
    """A proxy or server echoing the request must not put the bearer token in a log that no
    platform masks (GitLab, Jenkins, CircleCI): JWT shapes and long base64 runs are dropped."""
    token = "eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQyJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
    key_line = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvBbuIA7FX7/7gI2t"
    shown = quote_foreign(f"you sent Bearer {token} and {key_line}")
    assert token not in shown and key_line not in shown and "eyJ" not in shown
    assert shown == "you sent Bearer [a token, not shown] and [not shown]"
    apple = (
        "Provide a properly configured and signed bearer token https://developer.apple.com/go/?id=api-generating-tokens"
    )
    assert quote_foreign(apple) == apple


@pytest.mark.parametrize("status", [401, 403, 400])
def test_a_null_code_and_empty_error_never_read_as_none(status: int) -> None:
    """Apple's fields are optional: ``"code": null`` is no code, and an error with nothing in it
    is said to be empty, never printed as "None" or as nothing after "Apple said:"."""
    body = {"errors": [{"status": None, "code": None, "title": None, "detail": None}]}
    reply = Reply(status, {"content-type": "application/json"}, json.dumps(body).encode())
    assert error_code(reply) is None
    assert apple_said(reply) == "an error with no status, code, title or detail"
    error = explain(reply, CLI)
    assert "None" not in error.message + error.details, error.message
    asked = Asked(URL, "team", purpose="list apps", key_id="ABCDE12345")
    request_error = explain_api_reply(reply, asked, "GET", CLI, lambda: NOW)
    assert "None" not in request_error.message + request_error.details, request_error.message
