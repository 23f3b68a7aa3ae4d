#!/usr/bin/env python3
"""Runs asc-token-action: by the composite action, the container image, or by hand."""

import os
import sys

# From a checkout (the composite action, the demo) the package lives in ./src; in the image it
# is installed. Either way, no other path is trusted.
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(os.path.join(_SRC, "asc_token")):
    sys.path.insert(0, _SRC)

from asc_token.dispatch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
