"""Prove the credentials work with one cheap GET (``/v1/apps?limit=1`` on App Store Connect, the
chosen API's ``verify_path``): send it, read the facts, or explain."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

from .apis import APP_STORE_CONNECT, Api
from .config import Naming
from .explain import Request, explain_reply, explain_unreachable, is_apple_json, measure_skew
from .transport import NoAnswerError, Reply, Tokens, Transport, parse_rate_limit

VERIFY_PATH = APP_STORE_CONNECT.verify_path  # each API's own is in apis.py


@dataclass(frozen=True)
class VerificationResult:
    status: int
    app_count: Optional[int]
    rate_limit_remaining: Optional[int]
    rate_limit_limit: Optional[int]
    attempts: int
    clock_skew_seconds: Optional[float] = None


def verify_credentials(
    tokens: Tokens,
    api_url: str,
    *,
    key_type: str,
    transport: Transport,
    naming: Naming,
    clock: Callable[[], float] = time.time,
    api: Api = APP_STORE_CONNECT,
) -> VerificationResult:
    url = api_url.rstrip("/") + api.verify_path
    try:
        reply = transport.send("GET", url, tokens)
    except NoAnswerError as error:
        raise explain_unreachable(error.kind, url, naming, error.attempts) from None
    if reply.status != 200 or not is_apple_json(reply):
        raise explain_reply(
            reply, Request(url, key_type, purpose=api.verify_purpose, attempts=reply.attempts), naming, clock
        )
    result = _success(reply, clock)
    # The answer counts what the request lists: apps only where that request is /v1/apps.
    return result if api.verify_path == VERIFY_PATH else replace(result, app_count=None)


def _success(reply: Reply, clock: Callable[[], float]) -> VerificationResult:
    body = json.loads(reply.body)
    total = None
    meta = body.get("meta") if isinstance(body, dict) else None
    paging = meta.get("paging") if isinstance(meta, dict) else None
    if isinstance(paging, dict) and isinstance(paging.get("total"), int):
        total = paging["total"]
    elif isinstance(body, dict) and isinstance(body.get("data"), list):
        total = len(body["data"])
    limit, remaining = parse_rate_limit(reply.header("x-rate-limit"))
    return VerificationResult(
        status=reply.status,
        app_count=total,
        rate_limit_remaining=remaining,
        rate_limit_limit=limit,
        attempts=reply.attempts,
        clock_skew_seconds=measure_skew(reply, clock),
    )
