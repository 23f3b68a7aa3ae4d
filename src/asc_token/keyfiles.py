"""Write the key where Apple's tools look for it: ``AuthKey_<KEYID>.p8`` and fastlane's JSON.

Files are created 0600 in a 0700 folder and replaced atomically (:func:`write_secret_file`),
so a re-run in the same job never appends to or half-writes a key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, Optional

from .errors import KeyFilesError
from .files import write_secret_file
from .minting import MAX_LIFETIME_SECONDS

FOLDER_NAME = "private_keys"


@dataclass(frozen=True)
class KeyFiles:
    directory: str
    key_path: str
    api_key_json_path: str


def write_key_files(
    *,
    base_dir: Optional[str],
    key_pem: str,
    key_id: str,
    issuer_id: Optional[str],
    duration: int,
    in_house: bool = False,
) -> KeyFiles:
    if not base_dir or not os.path.isdir(base_dir):
        raise KeyFilesError(
            "write-key-files needs the runner's temporary folder (RUNNER_TEMP), and it is "
            f"{'not set' if not base_dir else 'not a folder here'}: use the composite action "
            "(uses: org/asc-token-action@v1) rather than the container image for key files.",
            details=(
                "Container steps do not see the runner's RUNNER_TEMP, and a key written anywhere "
                "else would outlive the job."
            ),
        )
    directory = os.path.join(base_dir, FOLDER_NAME)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    key_path = os.path.join(directory, f"AuthKey_{key_id}.p8")
    json_path = os.path.join(directory, f"fastlane_api_key_{key_id}.json")
    fastlane: Dict[str, object] = {
        "key_id": key_id,
        "key": key_pem,
        # fastlane signs its own tokens for any request, so never beyond Apple's 20 minutes.
        "duration": min(duration, MAX_LIFETIME_SECONDS),
        "in_house": in_house,  # true for the Enterprise Program API
    }
    if issuer_id is not None:
        fastlane["issuer_id"] = issuer_id  # individual keys have none; fastlane then uses sub: user
    write_secret_file(key_path, key_pem)
    write_secret_file(json_path, json.dumps(fastlane, indent=2) + "\n")
    return KeyFiles(directory=directory, key_path=key_path, api_key_json_path=json_path)
