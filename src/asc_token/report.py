"""Human-facing text: the job summary and the failure explanation. Never a key or token."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, List, Optional, Sequence

from .apis import APP_STORE_CONNECT
from .errors import AscTokenError, ChecksFailedError
from .lifetimes import SHORT_LIFETIME_SECONDS, SKEW_TOLERANCE_SECONDS, describe_duration
from .redact import one_line

if TYPE_CHECKING:
    from .records import CheckResult, Naming, Outcome, Settings


def summary_markdown(
    settings: Optional[Settings], outcome: Optional[Outcome], error: Optional[AscTokenError], naming: Naming
) -> str:
    credentials = settings.credentials if settings is not None else None
    preflight = settings.preflight if settings is not None else None
    api = credentials.api if credentials is not None else APP_STORE_CONNECT
    lines = [f"### {api.service} token", ""]
    if credentials is not None:
        lines += [
            "| | |",
            "|---|---|",
            f"| Key ID | `{credentials.key_id}` |",
            f"| Key type | {credentials.key_type} |",
        ]
        if credentials.issuer_id is not None:  # validated as a UUID: shown, to compare after a 401
            lines.append(f"| Issuer ID | `{credentials.issuer_id}` |")
        if credentials.scope:
            lines.append(f"| Scope | {'<br>'.join(markdown_text(s) for s in credentials.scope)} |")
    if outcome is not None:
        lifetime = outcome.minted.expires_at - outcome.minted.issued_at
        long_lived = lifetime > SHORT_LIFETIME_SECONDS
        length = f"{lifetime} s, {describe_duration(lifetime)}," if long_lived else f"{lifetime} s"
        lines.append(f"| Expires | {outcome.minted.expires_at_iso} ({length} after `iat`) |")
        if long_lived:
            lines.append(
                "| Long-lived | ⚠️ this token works until it expires: store it as a secret (never in a log, "
                "artifact or repository), rotate it before then, and revoke the key if it leaks |"
            )
        result = outcome.verification
        if result is None and preflight is not None and not preflight.verify:
            lines.append(f"| Verification | skipped ({naming.assignment('verify', 'false')}) |")
        elif result is not None:
            apps = f", {result.app_count} apps visible" if result.app_count is not None else ""
            tries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
            separate = any(r.separate_token for r in outcome.checks if r.check.name == "apps")
            how = " (with a separate unscoped token)" if separate else ""
            lines.append(f"| Verification | ✅ credentials accepted{how}{apps}{tries} |")
            if result.rate_limit_remaining is not None:
                of = f" of {result.rate_limit_limit}" if result.rate_limit_limit is not None else ""
                lines.append(f"| Rate limit | {result.rate_limit_remaining}{of} requests left this hour |")
            else:
                lines.append("| Rate limit | not reported |")
            if result.clock_skew_seconds is not None and abs(result.clock_skew_seconds) > SKEW_TOLERANCE_SECONDS:
                lines.append(
                    f"| Clock | ⚠️ runner differs from Apple by {describe_duration(result.clock_skew_seconds)} |"
                )
        if outcome.key_files is not None:
            files = outcome.key_files
            lines.append(f"| Key files | {markdown_text(files.key_path)}, {markdown_text(files.api_key_json_path)} |")
    if error is not None and credentials is not None:
        lines.append("| Result | ❌ failed |")
    lines += check_rows(error.results if isinstance(error, ChecksFailedError) else outcome.checks if outcome else ())
    if error is not None:
        lines += ["", f"**{error.title}**", "", markdown_own(error.message)]
        if error.details:
            lines += ["", details_markdown(error.details)]
    return "\n".join(lines) + "\n"


def details_markdown(details: str) -> str:
    """The explanation under an error: its lines as Markdown (numbered causes as a list, our code
    spans as code), except a block with indented lines (a YAML example), which is fenced as it is."""
    if any(line.startswith((" ", "\t")) for line in details.splitlines()):
        # A fence longer than any backtick run inside: the details cannot close it early.
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", details)), default=0))
        return f"{fence}\n{details}\n{fence}"
    rendered: List[str] = []
    for line in (line for line in details.splitlines() if line.strip()):
        listed = re.match(r"[0-9]+\. ", line) is not None
        joined = listed and bool(rendered) and re.match(r"[0-9]+\. ", rendered[-1]) is not None
        rendered.append(("\n" if joined or not rendered else "\n\n") + markdown_own(line))
    return "".join(rendered).lstrip("\n")


def check_rows(results: Sequence[CheckResult]) -> List[str]:
    """One row per check: the check, its result, and what it means for the job."""
    if not results:
        return []
    lines = ["", "| check | result | what it means for the job |", "|---|---|---|"]
    for result in results:
        icon = "✅" if result.passed else ("⏭️" if result.error is None else "❌")
        # The entry was validated (letters, digits, `.`, `-`, `:`), so a code span shows it as is.
        entry, outcome, meaning = result.check.entry, markdown_text(result.result), markdown_text(result.meaning)
        lines.append(f"| `{entry}` | {icon} {outcome} | {meaning} |")
    return lines


def markdown_own(text: str) -> str:
    """The program's own wording in Markdown: its code spans (`key-id`) render as code, all else
    as :func:`markdown_text`. Foreign text reaches messages through redact.quote_foreign, which
    leaves no backtick, so every pair is ours; an unpaired one is escaped. Code is inert either way."""
    parts = re.split(r"(`[^`]+`)", one_line(text))
    return "".join(part if n % 2 else _escaped(part) for n, part in enumerate(parts))


def markdown_text(text: str) -> str:
    """Text that may hold user- or server-supplied parts, shown literally in Markdown: no HTML,
    image, link, code span or emphasis, and safe inside a table cell (``|``, one line)."""
    return _escaped(one_line(text))


def _escaped(flat: str) -> str:
    escaped = re.sub(r"([\\`*_\[\]<>!|&~#])", r"\\\1", flat)
    # GitHub links bare URLs and www. names: an entity for the colon or the first w keeps them text.
    return re.sub(r"(?i)\bw(?=ww\.)", "&#119;", re.sub(r":(?=//)", "&#58;", escaped))
