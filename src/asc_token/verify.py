"""Prove the credentials work with one ``GET /v1/apps?limit=1``: the `apps` check of :mod:`checks`.

Kept so that callers of the single verification request need not know about the other checks.
"""

from __future__ import annotations

from .checks import VERIFY_PATH, VerificationResult, verify_credentials

__all__ = ["VERIFY_PATH", "VerificationResult", "verify_credentials"]
