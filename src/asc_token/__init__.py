"""Mint App Store Connect API tokens in CI, and prove the credentials work."""

__version__ = "1.0.0"
