"""Human-facing text: the job summary and the failure explanation. Never a key or token."""

from __future__ import annotations

import re
from typing import Optional

from .config import Naming, Settings
from .errors import AscTokenError
from .explain import describe_duration
from .flow import Outcome


def summary_markdown(
    settings: Optional[Settings], outcome: Optional[Outcome], error: Optional[AscTokenError], naming: Naming
) -> str:
    lines = ["### App Store Connect token", ""]
    if settings is not None:
        lines += ["| | |", "|---|---|", f"| Key ID | `{settings.key_id}` |", f"| Key type | {settings.key_type} |"]
        if settings.scope:
            lines.append(f"| Scope | {'<br>'.join(markdown_text(s) for s in settings.scope)} |")
    if outcome is not None:
        lifetime = outcome.minted.expires_at - outcome.minted.issued_at
        lines.append(f"| Expires | {outcome.minted.expires_at_iso} ({lifetime} s after `iat`) |")
        result = outcome.verification
        if result is None and settings is not None and not settings.verify:
            lines.append(f"| Verification | skipped ({naming.assignment('verify', 'false')}) |")
        elif result is not None:
            apps = f", {result.app_count} apps visible" if result.app_count is not None else ""
            tries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
            how = " (with a separate unscoped token)" if outcome.verified_with_separate_token else ""
            lines.append(f"| Verification | ✅ credentials accepted{how}{apps}{tries} |")
            if result.rate_limit_remaining is not None:
                lines.append(
                    f"| Rate limit | {result.rate_limit_remaining} of {result.rate_limit_limit} requests left this hour |"
                )
            if result.clock_skew_seconds is not None and abs(result.clock_skew_seconds) > 60:
                lines.append(
                    f"| Clock | ⚠️ runner differs from Apple by {describe_duration(result.clock_skew_seconds)} |"
                )
        if outcome.key_files is not None:
            files = outcome.key_files
            lines.append(f"| Key files | {markdown_text(files.key_path)}, {markdown_text(files.api_key_json_path)} |")
    if error is not None:
        if settings is not None:
            lines.append("| Result | ❌ failed |")
        lines += ["", f"**{error.title}**", "", markdown_text(error.message)]
        if error.details:
            # A fence longer than any backtick run inside: the details cannot close it early.
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", error.details)), default=0))
            lines += ["", fence, error.details, fence]
    return "\n".join(lines) + "\n"


def markdown_text(text: str) -> str:
    """Text that may hold user- or server-supplied parts, shown literally in Markdown: no HTML,
    image, link, code span or emphasis, and safe inside a table cell (``|``, one line)."""
    flat = " ".join(text.split())
    return re.sub(r"([\\`*_\[\]<>!|&~#])", r"\\\1", flat)
