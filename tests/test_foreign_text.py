"""Text from a server, a proxy or a links.next is shown as text: no links, no reordering, no commands."""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path
from typing import Callable, Dict, TypeVar

import pytest

from asc_token.errors import AscTokenError, NotAppleError
from asc_token.explain import Asked, explain_reply, explain_unreachable, summarise_body
from asc_token.inputs import GitHubInputs
from asc_token.redact import quote_foreign
from asc_token.report import markdown_text, summary_markdown
from asc_token.transport import NoAnswerError, Reply, RetryPolicy, Transport, parse_rate_limit
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import (
    HOSTILE,
    ISSUER_ID,
    KEY_ID,
    FixedToken,
    KeyMaterial,
    OnFds,
    detection_env,
    foreign_lines_are_inert,
    invoke,
    one_error,
    rendered,
    settings,
)

SPOOFS = ["\u202e", "\u202d", "\u2066", "\u2069", "\u200f", "\u061c", "\u009b", "\u0085", "\u2028"]


def test_a_url_in_an_error_code_is_not_a_link_in_the_summary(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("apple-error", status=403, code="SEE_https://evil.example/login", detail="or www.evil.example"))
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 1
    outside_code = re.sub(r"(?ms)^(`{3,})\n.*?^\1$", "", result.summary)  # no links inside a fence
    assert "https://evil.example" not in outside_code and "www.evil.example" not in outside_code
    assert "evil.example/login" in outside_code  # still shown, as text


@pytest.mark.parametrize("char", SPOOFS)
def test_bidi_and_c1_controls_never_reach_log_or_summary(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, char: str
) -> None:
    api.inject(Fault("apple-error", status=403, code=f"FORBIDDEN{char}exe.txt", title=f"t{char}", detail=f"d{char}"))
    result = invoke("action", tmp_path, settings(key, standin=api))
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
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 1, result.stdout
    assert "token" not in result.outputs and "verified" not in result.summary.lower().replace("not verified", "")


# --- API answers cannot inject commands or Markdown -------------------------------------------


def hostile_answers() -> Dict[str, Fault]:
    return {
        "detail": Fault("apple-error", status=403, code="FORBIDDEN_ERROR", title="Forbidden", detail=HOSTILE),
        "title": Fault("apple-error", status=403, code="FORBIDDEN_ERROR", title=HOSTILE, detail="x"),
        "code": Fault("apple-error", status=403, code=HOSTILE, title="t", detail="d"),
        "html title": Fault("html-page", status=403, title=HOSTILE, detail=HOSTILE),
    }


# The action and the CLI in this process, their stdout and stderr read at the file descriptors: every
# line a runner would read as a command reaches these files.
@pytest.mark.parametrize("where", sorted(hostile_answers()))
def test_injection_through_the_action(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, where: str, capfd: pytest.CaptureFixture[str]
) -> None:
    api.inject(hostile_answers()[where])
    result = invoke("action", tmp_path, settings(key, verify="true", api_url=api.url), mode=OnFds(capfd))
    assert result.returncode == 1
    one_error(result)
    foreign_lines_are_inert(result.log)
    assert_markdown_inert(result.summary)
    assert "credentials accepted" not in result.summary


@pytest.mark.parametrize("platform", ["github", "azure"])
@pytest.mark.parametrize("where", sorted(hostile_answers()))
def test_injection_through_the_cli(
    tmp_path: Path,
    key: KeyMaterial,
    api: AppStoreConnectStandIn,
    platform: str,
    where: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    api.inject(hostile_answers()[where])
    named, env = settings(key, verify=None), detection_env(platform, tmp_path)
    run = invoke("asc-token", tmp_path, named, ["--api-url", api.url], mode=OnFds(capfd), env=env)
    assert run.returncode == 1
    assert run.stdout.count("##vso[task.setvariable") == 0 and "Traceback" not in run.stderr
    foreign_lines_are_inert(run.stdout + run.stderr, azure=platform == "azure")


def assert_markdown_inert(summary: str) -> None:
    """Whatever foreign text the summary holds, it renders as text: no image, link or HTML."""
    html = rendered(summary)
    for tag in ("<img", "<a ", "<script", "<details"):
        assert tag not in html, html
    # Every row of a table has as many cells as its header, however the text looks.
    header_cells = 0
    for line in summary.splitlines():
        cells = len(re.findall(r"(?<!\\)\|", line)) if line.startswith("|") else 0
        header_cells = header_cells or cells
        assert cells in (0, header_cells), line
        header_cells = header_cells if cells else 0


def test_summary_escapes_markdown_in_message_scope_and_details() -> None:
    from asc_token.checks import Preflight
    from asc_token.records import Credentials, KeySource, Settings

    credentials = Credentials(
        key_id=KEY_ID,
        issuer_id=ISSUER_ID,
        key_type="team",
        expires_in=1200,
        scope=("GET /v1/apps?x=![i](http://127.0.0.1:9/x.png)|<b>|`", "GET /v1/builds"),
        key=KeySource("`private-key`", contents="x"),
    )
    details = "Apple said:\n```\n## not a heading\n````\n<img src=x>\n```````"
    error = AscTokenError(f"The server said {HOSTILE}.", details=details)
    summary = summary_markdown(Settings(credentials, Preflight()), None, error, GitHubInputs({}))
    assert_markdown_inert(summary)
    html = rendered(summary)
    assert "&lt;img src=x&gt;" in html and "pwned" in html  # shown, as text
    assert "<h2>" not in html and "<pre>" not in html  # no heading, no code block opened by the text
    assert html.count("<tr>") == 6  # header, key ID, key type, issuer, scope, result: no row added by text


def test_an_indented_example_in_the_details_stays_a_code_block() -> None:
    from asc_token.report import details_markdown

    example = "If you did set it, the secret is empty.\n\nwith:\n  private-key: ${{ secrets.ASC_PRIVATE_KEY }}"
    html = rendered(details_markdown(example))
    assert "<pre><code>" in html and "private-key: ${{ secrets.ASC_PRIVATE_KEY }}" in html


def test_numbered_causes_render_as_a_list_with_our_code_spans() -> None:
    from asc_token.report import details_markdown

    details = "Likely causes, most likely first:\n1. `issuer-id` is wrong\n2. `key-id` too\nApple said: 401 <b>x</b>"
    html = rendered(details_markdown(details))
    assert "<ol>" in html and html.count("<li>") == 2 and "<code>issuer-id</code>" in html
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_summary_renders_its_own_code_spans_and_escapes_foreign_text() -> None:
    said = quote_foreign(f"{HOSTILE} `<img src=x>` `[l](http://127.0.0.1:9/)`")
    error = AscTokenError(f"Set `key-id` to the Key ID; the server said {said}; or set `verify: false`.")
    summary = summary_markdown(None, None, error, GitHubInputs({}))
    assert_markdown_inert(summary)
    html = rendered(summary)
    assert "<code>key-id</code>" in html and "<code>verify: false</code>" in html
    assert html.count("<code>") == 2  # the server's backticks became quotes: no code span of its own
    assert "&lt;img src=x&gt;" in html and "pwned" in html


@pytest.mark.parametrize(
    "message",
    ["`key-id` and ` <img src=x> ` `", "a ``` b `![i](http://127.0.0.1:9/x.png)` c ` | d", "\\`x` ` <b>`y"],
)
def test_summary_stays_inert_whatever_backticks_a_message_holds(message: str) -> None:
    """Foreign text that reached a message without quote_foreign can pair a backtick: still text or code."""
    summary = summary_markdown(None, None, AscTokenError(message), GitHubInputs({}))
    assert_markdown_inert(summary)
    assert "<b>" not in rendered(summary)


def test_markdown_text_escapes_what_acts() -> None:
    assert markdown_text("a|b") == "a\\|b"
    assert markdown_text("![x](y) <b> `c` *d* _e_ [f] &amp; ~g~ #h") == (
        "\\!\\[x\\](y) \\<b\\> \\`c\\` \\*d\\* \\_e\\_ \\[f\\] \\&amp; \\~g\\~ \\#h"
    )
    assert markdown_text("one\ntwo\r\nthree") == "one two three"  # one line: a table cell stays one
    assert markdown_text("a\\") == "a\\\\"


# --- a redirect or an HTML page is never "verified" -------------------------------------------


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Fault("redirect", status=302, location="https://login.example/portal"), "redirect (302)"),
        (Fault("html-page", status=200, title="Hotel Wi-Fi: sign in"), "page title"),
    ],
)
def test_redirect_or_html_is_a_failure(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, fault: Fault, says: str
) -> None:
    api.inject(fault)
    result = invoke("action", tmp_path, settings(key, verify="true", api_url=api.url))
    assert result.returncode == 1
    message = one_error(result)
    assert says in message and "`api-url`" in message
    assert "credentials accepted" not in result.summary and "token" not in result.outputs
    assert "Something between the runner and App Store Connect answered" in result.summary
    assert api.requests == [("/v1/apps?limit=1", f"{fault.kind} {fault.status}")]


def test_html_200_explained_as_not_apple() -> None:
    reply = Reply(200, {"content-type": "text/html"}, b"<html><title>Captive portal</title></html>")
    error = explain_reply(reply, Asked("https://api.example/v1/apps", "team"), GitHubInputs({}), time.time)
    assert isinstance(error, NotAppleError)
    assert 'page title "Captive portal"' in error.message


# --- bounded time and size, whatever the server sends -----------------------------------------


T = TypeVar("T")


def quick(work: Callable[[], T]) -> T:
    start = time.monotonic()
    result = work()
    assert time.monotonic() - start < 2, "linear work on 1 MB took too long"
    return result


def test_title_spam_is_summarised_quickly() -> None:
    for body in (b"<title" * 180_000, b"<title>" + b"a" * 1_000_000, b"<TITLE>x</title" * 70_000):
        reply = Reply(502, {"content-type": "text/html"}, body)
        summary = quick(functools.partial(summarise_body, reply))
        assert isinstance(summary, str) and len(summary) < 300


def test_rate_limit_header_spam_is_parsed_quickly() -> None:
    for header in ("user-hour-lim:" + "1" * 1_000_000, ";" * 1_000_000, "user-hour-rem:1;" * 70_000, "a:" * 500_000):
        assert quick(functools.partial(parse_rate_limit, header)) in ((None, None), (None, 1))


def test_trickled_body_ends_at_the_deadline(api: AppStoreConnectStandIn) -> None:
    # A byte every 0.2 s never lets the 1 s read timeout fire: only the whole deadline can end it.
    api.inject(*[Fault("trickle", seconds=0.2)] * 3)
    policy = RetryPolicy(total_seconds=1, connect_timeout=1, read_timeout=1, backoff_base=0.05, backoff_cap=0.1)
    start = time.monotonic()
    with pytest.raises(NoAnswerError) as raised:
        Transport(policy=policy).send("GET", api.url + "/v1/apps?limit=1", FixedToken("token"))
    assert raised.value.kind == "timeout"
    assert time.monotonic() - start < policy.total_seconds + 1.5


@pytest.mark.parametrize("megabytes", [1, 5])
def test_huge_detail_stays_out_of_log_and_summary(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, megabytes: int
) -> None:
    api.inject(
        Fault("apple-error", status=403, code="FORBIDDEN_ERROR", title="t", detail="DDDD " * ((megabytes << 20) // 5))
    )
    result = invoke("action", tmp_path, settings(key, verify="true", api_url=api.url))
    assert result.returncode == 1
    one_error(result)
    assert len(result.summary) < 100_000 and len(result.stdout) < 100_000
    assert "DDDD" in result.summary or "body of 4194304+ bytes" in result.summary


# --- answers no well-behaved server sends --------------------------------------------------------


def test_a_redirect_to_a_location_that_is_not_utf8_is_explained(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """requests decodes a Location even when it follows none; ours never follows, so never decodes."""
    for fault in (
        Fault("redirect", status=302, location="caf\u00e9"),
        Fault("redirect", status=302, location="\x9b31m"),
    ):
        api.inject(fault)
        result = invoke("action", tmp_path / str(len(api.requests)), settings(key, standin=api))
        assert result.returncode == 1 and "Internal error" not in result.log, result.log
        assert "answered with a redirect (302)" in one_error(result) and result.summary


def test_lone_surrogates_in_an_answer_are_text(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    body = '{"errors":[{"status":"401","code":"NOT_AUTHORIZED","title":"\\ud800","detail":"\\udfff"}]}'
    api.inject(*[Fault("raw-json", status=401, detail=body)] * 3)
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 1 and "Internal error" not in result.log and "401" in one_error(result)
    api.inject(Fault("raw-json", status=200, detail='{"data": "\\ud800"}'))
    called = invoke("asc-token api", tmp_path / "api", settings(key, verify=None, api_url=api.url), ["/v1/apps"])
    assert called.returncode == 0 and called.json() == {"data": "\ud800"}, called.log_lines  # the escape it came as


def test_a_number_json_cannot_hold_is_not_printed(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("raw-json", status=200, detail='{"data": [1e999999]}'))
    called = invoke("asc-token api", tmp_path, settings(key, verify=None, api_url=api.url), ["/v1/apps"])
    assert called.returncode == 1 and called.stdout_bytes == b""
