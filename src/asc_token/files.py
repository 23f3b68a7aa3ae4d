"""Writing secrets to disk: created 0600 from the start, replaced atomically."""

from __future__ import annotations

import os
import tempfile


def write_secret_file(path: str, content: str) -> None:
    """Create or replace ``path`` with ``content``: never readable by others, never half-written.

    The temporary file is made in the same folder (so the rename is atomic) by mkstemp, which
    creates it with mode 0600; an earlier file at ``path`` is replaced, never appended to.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(content)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
