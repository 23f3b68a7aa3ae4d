from __future__ import annotations

from typing import Dict, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from devtools.standin import AppStoreConnectStandIn

from .runner import ISSUER_ID, KEY_ID, KeyMaterial


@pytest.fixture(scope="session")
def key() -> KeyMaterial:
    return KeyMaterial(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def default_inputs(key: KeyMaterial) -> Dict[str, str]:
    """What a typical workflow passes: a team key, no verification (no network)."""
    return {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"}


@pytest.fixture
def api(key: KeyMaterial) -> Iterator[AppStoreConnectStandIn]:
    with AppStoreConnectStandIn() as standin:
        standin.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        yield standin
